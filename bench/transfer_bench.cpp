// Tensor transfer throughput to a `tempo worker` over loopback gRPC, next to a raw TCP copy of the
// same bytes. Usage: transfer_bench [MiB=64] [repeats=5]. Prints one line per measurement.
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include "common/remote/remote_worker_channel.h"
#include "worker/embedded_worker.h"
#include "worker/service/worker_server.h"

namespace {

using namespace tempo;
using Clock = std::chrono::steady_clock;
using protocol::Operand;

double median_seconds(int repeats, const std::function<void()>& f) {
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const auto start = Clock::now();
    f();
    t.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

BlindedTensor ones(const Shape& s) {
  BlindedTensor t = BlindedTensor::allocate(s);
  std::fill(t.mutable_data(), t.mutable_data() + t.numel(), 1.f);
  return t;
}

/// Uploads n floats (a 1×n operand against a cached n×1 one: the result is 1×1), and downloads n
/// floats (a cached n×1 operand times 1×1: the result is n×1), through `ch`.
struct Transfers {
  WorkerChannel& ch;
  int64_t n;
  uint64_t id = 1;
  void setup() {
    protocol::Request r;
    r.id = id++;
    r.a = Operand::inline_tensor(ones({1, n}));
    r.b = Operand::inline_tensor(ones({n, 1}), 1);
    check(ch.submit(std::move(r)).get());
    r = {};
    r.id = id++;
    r.a = Operand::inline_tensor(ones({n, 1}), 2);
    r.b = Operand::inline_tensor(ones({1, 1}));
    check(ch.submit(std::move(r)).get());
  }
  void upload(const BlindedTensor& a) {
    protocol::Request r;
    r.id = id++;
    r.a = Operand::inline_tensor(a);
    r.b = Operand::cached(1);
    check(ch.submit(std::move(r)).get());
  }
  void download() {
    protocol::Request r;
    r.id = id++;
    r.a = Operand::cached(2);
    r.b = Operand::inline_tensor(ones({1, 1}));
    check(ch.submit(std::move(r)).get());
  }
  static void check(const protocol::Response& r) {
    if (!r.ok) {
      std::fprintf(stderr, "transfer_bench: %s\n", r.error.c_str());
      std::exit(1);
    }
  }
};

/// One-way copy of `bytes` over a loopback TCP connection (the kernel's copy, no framing).
double raw_tcp_seconds(int64_t bytes, int repeats) {
  const int ls = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(ls, 1) != 0 ||
      getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::perror("transfer_bench: raw socket");
    std::exit(1);
  }
  std::vector<char> src(static_cast<size_t>(bytes), 1), dst(static_cast<size_t>(bytes));
  std::thread server([&] {
    const int fd = accept(ls, nullptr, nullptr);
    for (int i = 0; i < repeats; ++i) {
      for (int64_t got = 0; got < bytes;) {
        const ssize_t k = read(fd, dst.data() + got, static_cast<size_t>(bytes - got));
        if (k <= 0) std::exit(1);
        got += k;
      }
      const char ack = 1;
      if (write(fd, &ack, 1) != 1) std::exit(1);
    }
    close(fd);
  });
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::exit(1);
  const double s = median_seconds(repeats, [&] {
    for (int64_t sent = 0; sent < bytes;) {
      const ssize_t k = write(fd, src.data() + sent, static_cast<size_t>(bytes - sent));
      if (k <= 0) std::exit(1);
      sent += k;
    }
    char ack;
    if (read(fd, &ack, 1) != 1) std::exit(1);
  });
  close(fd);
  server.join();
  close(ls);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  // The heap settings of `tempo` (src/cli/main.cpp): gRPC's slices and protobuf's strings of a few
  // MiB then reuse heap memory instead of faulting in fresh pages from mmap for every chunk.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024);
  const int64_t mib = argc > 1 ? std::atoll(argv[1]) : 64;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  const int64_t bytes = mib << 20, n = bytes / 4;
  const double gb = static_cast<double>(bytes) / 1e9;

  worker::WorkerOptions wo;
  wo.threads = 1;
  wo.limits.max_tensor_bytes = 2 * bytes;
  wo.limits.max_cache_bytes = 8 * bytes;
  worker::service::ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.worker = wo;
  so.log = [](const std::string&) {};
  worker::service::WorkerServer server(so);
  remote::RemoteWorkerOptions ro;
  ro.address = server.address();
  remote::RemoteWorkerChannel remote(ro);
  worker::EmbeddedWorker embedded(wo);

  const BlindedTensor a = ones({1, n});
  std::printf("transfer_bench: %lld MiB tensors, median of %d, loopback\n",
              static_cast<long long>(mib), repeats);
  for (auto [name, ch] :
       {std::pair<const char*, WorkerChannel*>{"embedded", &embedded}, {"grpc", &remote}}) {
    Transfers t{*ch, n};
    t.setup();
    const double up = median_seconds(repeats, [&] { t.upload(a); });
    const double down = median_seconds(repeats, [&] { t.download(); });
    std::printf("%-9s upload   %7.1f ms  %6.2f GB/s\n", name, up * 1e3, gb / up);
    std::printf("%-9s download %7.1f ms  %6.2f GB/s\n", name, down * 1e3, gb / down);
  }
  const double tcp = raw_tcp_seconds(bytes, repeats);
  std::printf("raw-tcp   one-way  %7.1f ms  %6.2f GB/s\n", tcp * 1e3, gb / tcp);
  return 0;
}
