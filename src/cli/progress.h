// Human-facing progress output on stderr: a bar on a terminal, plain log lines otherwise.
#pragma once

#include <cstdint>
#include <string>

namespace tempo::cli {

class Progress {
 public:
  explicit Progress(int64_t log_every);
  void step(int epoch, int epochs, int64_t step, int64_t steps, double loss, double images_per_s);
  void epoch(int epoch, int epochs, double test_accuracy, double test_loss, double train_loss);
  void message(const std::string& text);

 private:
  void end_bar();
  bool tty_;
  bool bar_open_ = false;
  int64_t log_every_;
  double smoothed_loss_ = -1;
};

}  // namespace tempo::cli
