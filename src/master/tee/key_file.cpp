#include "master/tee/key_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace tempo::tee {

Key load_key_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("key file " + path.string() + ": cannot open");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  Key key;
  if (s.size() == key.bytes.size()) {
    std::memcpy(key.bytes.data(), s.data(), s.size());
  } else {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    if (e - b != 2 * key.bytes.size())
      throw std::runtime_error("key file " + path.string() +
                               ": expected 32 raw bytes or 64 hex "
                               "digits, found " +
                               std::to_string(s.size()) + " bytes");
    Bytes raw;
    try {
      raw = from_hex(std::string_view(s).substr(b, e - b), "key");
    } catch (const std::invalid_argument& err) {
      throw std::runtime_error("key file " + path.string() + ": " + err.what());
    }
    std::memcpy(key.bytes.data(), raw.data(), raw.size());
    std::fill(raw.begin(), raw.end(), 0);
  }
  std::fill(s.begin(), s.end(), '\0');
  return key;
}

Key generate_key_file(const std::filesystem::path& path) {
  Key key;
  random_bytes(key.bytes.data(), key.bytes.size());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int err = errno;
    throw std::runtime_error("key file " + path.string() +
                             ": cannot create: " + std::strerror(err) +
                             (err == EEXIST ? " (refusing to overwrite a key)" : ""));
  }
  const std::string hex = to_hex(key.bytes) + "\n";
  const bool ok =
      ::write(fd, hex.data(), hex.size()) == static_cast<ssize_t>(hex.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(path.c_str());
    throw std::runtime_error("key file " + path.string() + ": write failed");
  }
  return key;
}

std::array<uint8_t, 8> key_fingerprint(const Key& key) {
  const Digest d = hmac_sha256(key, as_bytes("tempo key fingerprint v1"));
  std::array<uint8_t, 8> out;
  std::copy_n(d.begin(), out.size(), out.begin());
  return out;
}

}  // namespace tempo::tee
