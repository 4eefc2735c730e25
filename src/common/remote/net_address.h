// Addresses and TLS files of the worker service, shared by `tempo worker` and its clients.
#pragma once

#include <string>

namespace tempo::remote {

/// "HOST:PORT" split; an IPv6 host is written in brackets: "[::1]:5000" (host is then "::1").
struct HostPort {
  std::string host;
  int port = 0;
};

/// Parses HOST:PORT with PORT in [0, 65535] (0: let the OS choose, for servers).
/// Throws std::invalid_argument naming the text and the problem.
HostPort parse_host_port(const std::string& text);

/// True for "localhost", 127.0.0.0/8 and ::1: traffic that never leaves the machine.
bool is_loopback_host(const std::string& host);

/// The PEM files of mutual TLS (--tls-ca, --tls-cert, --tls-key).
struct TlsFiles {
  std::string ca;    ///< CA certificate that signed the other side's certificate
  std::string cert;  ///< this side's certificate chain
  std::string key;   ///< this side's private key

  bool enabled() const { return !ca.empty() || !cert.empty() || !key.empty(); }
  /// Throws std::invalid_argument unless all three are set (`require_own_cert`) or, for a client,
  /// at least --tls-ca with --tls-cert and --tls-key given together or not at all.
  void check(bool require_own_cert) const;
};

/// The contents of a PEM file. Throws std::runtime_error naming `flag` and the file if it cannot be
/// read or holds no PEM block.
std::string read_pem_file(const std::string& path, const std::string& flag);

}  // namespace tempo::remote
