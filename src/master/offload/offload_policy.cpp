#include "master/offload/offload_policy.h"

#include <stdexcept>

namespace tempo::offload {

ConvMode parse_conv_mode(const std::string& name) {
  if (name == "patch") return ConvMode::kPatch;
  if (name == "channel") return ConvMode::kChannel;
  throw std::invalid_argument("unknown conv mode '" + name + "' (valid: patch, channel)");
}

Fallback parse_fallback(const std::string& name) {
  if (name == "stop") return Fallback::kStop;
  if (name == "local") return Fallback::kLocal;
  throw std::invalid_argument("unknown fallback '" + name + "' (valid: stop, local)");
}

const char* to_string(ConvMode mode) { return mode == ConvMode::kPatch ? "patch" : "channel"; }

bool matches_prefix(const std::string& path, const std::set<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (path == p ||
        (path.size() > p.size() && path.compare(0, p.size(), p) == 0 && path[p.size()] == '.'))
      return true;
  return false;
}

}  // namespace tempo::offload
