#include "master/integrity/integrity_monitor.h"

#include <cstdio>

namespace tempo::integrity {

IntegrityMonitor::IntegrityMonitor(IntegrityOptions options) : options_(options) {
  if (options_.rounds < 0) throw std::invalid_argument("verify rounds must be >= 0");
  sink_ = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
}

void IntegrityMonitor::passed() { ++checks_; }

void IntegrityMonitor::failed(IntegrityEvent e) {
  ++checks_;
  ++failures_;
  char ratio[32];
  std::snprintf(ratio, sizeof ratio, "%.3g", e.ratio);  // "inf": wrong shape or non-finite
  log("integrity: layer " + e.layer + ", " + e.operation + " (attempt " +
      std::to_string(e.attempt) + "): result rejected, error " + ratio + " x the tolerance (" +
      e.reason + "); action: " + e.action);
  std::lock_guard lock(mu_);
  // Bounded log in memory: the counters carry on past it.
  if (events_.size() < 1000) events_.push_back(std::move(e));
}

void IntegrityMonitor::quarantine(const std::string& worker, const std::string& why) {
  quarantined_ = true;
  log("integrity: worker " + worker + " quarantined for the rest of the run (" + why +
      "); its work goes to the other workers, or to the TEE when none is left");
}

std::vector<IntegrityEvent> IntegrityMonitor::events() const {
  std::lock_guard lock(mu_);
  return events_;
}

void IntegrityMonitor::set_log(std::function<void(const std::string&)> sink) {
  std::lock_guard lock(mu_);
  sink_ = std::move(sink);
}

void IntegrityMonitor::log(const std::string& line) {
  std::function<void(const std::string&)> sink;
  {
    std::lock_guard lock(mu_);
    sink = sink_;
  }
  if (sink) sink(line);
}

nlohmann::json IntegrityMonitor::to_json() const {
  return {{"verify_rounds", options_.rounds},
          {"on_failure", to_string(options_.on_failure)},
          {"precision", to_string(options_.precision)},
          {"integrity_checks", checks()},
          {"integrity_failures", failures()},
          {"integrity_retries", retries()},
          {"integrity_local_fallbacks", local_fallbacks()},
          {"worker_quarantined", quarantined()},
          {"products_without_worker", no_worker_.load()},
          {"integrity_check_seconds", check_seconds()}};
}

}  // namespace tempo::integrity
