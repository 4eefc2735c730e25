#include "common/remote/net_address.h"

#include <arpa/inet.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace tempo::remote {

HostPort parse_host_port(const std::string& text) {
  HostPort hp;
  std::string port;
  if (!text.empty() && text[0] == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw std::invalid_argument("bad address '" + text + "': expected [IPV6]:PORT");
    hp.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon)
      throw std::invalid_argument("bad address '" + text +
                                  "': expected HOST:PORT (IPv6 hosts in brackets: [::1]:PORT)");
    hp.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (hp.host.empty()) throw std::invalid_argument("bad address '" + text + "': empty host");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument("bad address '" + text + "': port must be a number in 0..65535");
  hp.port = std::stoi(port);
  if (hp.port > 65535)
    throw std::invalid_argument("bad address '" + text + "': port must be a number in 0..65535");
  return hp;
}

bool is_loopback_host(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

void TlsFiles::check(bool require_own_cert) const {
  if (!enabled()) return;
  if (require_own_cert && (ca.empty() || cert.empty() || key.empty()))
    throw std::invalid_argument(
        "mutual TLS needs all of --tls-ca, --tls-cert and --tls-key (the worker only accepts "
        "clients whose certificate the CA signed)");
  if (ca.empty()) throw std::invalid_argument("--tls-cert/--tls-key need --tls-ca");
  if (cert.empty() != key.empty())
    throw std::invalid_argument("--tls-cert and --tls-key go together");
}

std::string read_pem_file(const std::string& path, const std::string& flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(flag + ": cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  std::string pem = s.str();
  if (pem.find("-----BEGIN ") == std::string::npos)
    throw std::runtime_error(flag + ": " + path + " holds no PEM block");
  return pem;
}

}  // namespace tempo::remote
