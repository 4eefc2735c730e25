// Test helpers: `tempo worker` child processes and `tempo` runs, for the tests that drive the CLI.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace tempo {

struct Child {
  pid_t pid = -1;
  std::string address;
};

/// Starts `tempo worker --listen 127.0.0.1:0 ARGS` and reads the address it prints.
inline Child start_worker(const std::string& args) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  Child c;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    const std::string cmd =
        std::string(TEMPO_BINARY) + " worker --listen 127.0.0.1:0 " + args + " 2>/dev/null";
    execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), nullptr);
    _exit(127);
  }
  close(fds[1]);
  FILE* out = fdopen(fds[0], "r");
  std::array<char, 256> line{};
  const std::string prefix = "tempo worker: listening on ";
  if (fgets(line.data(), line.size(), out)) {
    std::string l = line.data();
    if (l.rfind(prefix, 0) == 0) c.address = l.substr(prefix.size(), l.find('\n') - prefix.size());
  }
  fclose(out);
  return c;
}

/// SIGTERM, then the exit status as waitpid gives it.
inline int stop(Child& c) {
  int status = 0;
  kill(c.pid, SIGTERM);
  waitpid(c.pid, &status, 0);
  return status;
}

/// Runs `tempo ARGS`; the exit status and stdout+stderr.
inline std::pair<int, std::string> run(const std::string& args) {
  std::string out;
  FILE* p = popen((std::string(TEMPO_BINARY) + " " + args + " 2>&1").c_str(), "r");
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), p)) out += buf.data();
  return {WEXITSTATUS(pclose(p)), out};
}

/// The per-step losses of a --metrics-out file.
inline std::vector<double> losses(const std::filesystem::path& metrics) {
  std::vector<double> out;
  std::ifstream in(metrics);
  for (std::string l; std::getline(in, l);) {
    auto j = nlohmann::json::parse(l);
    if (j.contains("loss")) out.push_back(j["loss"].get<double>());
  }
  return out;
}

}  // namespace tempo
