#include "cli/record_view_steps.h"

#include <charconv>
#include <stdexcept>

namespace tempo::cli {

namespace {

int64_t parse_step(const std::string& spec, const std::string& text) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || v < 1)
    throw std::invalid_argument("--record-view-steps " + spec +
                                ": expected all, last, N or A-B with steps counted from 1");
  return v;
}

}  // namespace

RecordViewSteps RecordViewSteps::parse(const std::string& spec) {
  RecordViewSteps s;
  if (spec == "all") return s;
  s.all_ = false;
  if (spec == "last") {
    s.last_ = true;
    return s;
  }
  const size_t dash = spec.find('-');
  s.first_ = parse_step(spec, spec.substr(0, dash));
  s.final_ = dash == std::string::npos ? s.first_ : parse_step(spec, spec.substr(dash + 1));
  if (s.final_ < s.first_)
    throw std::invalid_argument("--record-view-steps " + spec + ": the range is empty");
  return s;
}

bool RecordViewSteps::contains(int64_t step, int64_t total_steps) const {
  if (all_) return true;
  if (last_) return step == total_steps;
  return step >= first_ && step <= final_;
}

}  // namespace tempo::cli
