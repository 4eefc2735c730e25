#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

namespace tempo::cli {

Progress::Progress(int64_t log_every) : tty_(isatty(STDERR_FILENO)), log_every_(log_every) {}

void Progress::end_bar() {
  if (bar_open_) std::fputc('\n', stderr);
  bar_open_ = false;
}

void Progress::step(int epoch, int epochs, int64_t step, int64_t steps, double loss,
                    double images_per_s) {
  smoothed_loss_ = smoothed_loss_ < 0 ? loss : 0.9 * smoothed_loss_ + 0.1 * loss;
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * step / std::max<int64_t>(steps, 1));
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\repoch %d/%d [%s] %lld/%lld loss %.4f %.0f img/s ", epoch + 1, epochs,
                 bar.c_str(), static_cast<long long>(step), static_cast<long long>(steps),
                 smoothed_loss_, images_per_s);
    bar_open_ = true;
  } else if (step % log_every_ == 0 || step == steps) {
    std::fprintf(stderr, "epoch %d/%d step %lld/%lld loss %.4f (%.0f img/s)\n", epoch + 1, epochs,
                 static_cast<long long>(step), static_cast<long long>(steps), smoothed_loss_,
                 images_per_s);
  }
  std::fflush(stderr);
}

void Progress::epoch(int epoch, int epochs, double test_accuracy, double test_loss,
                     double train_loss) {
  end_bar();
  std::fprintf(stderr, "epoch %d/%d: train loss %.4f, test loss %.4f, test accuracy %.2f%%\n",
               epoch + 1, epochs, train_loss, test_loss, 100.0 * test_accuracy);
}

void Progress::message(const std::string& text) {
  end_bar();
  std::fprintf(stderr, "%s\n", text.c_str());
}

}  // namespace tempo::cli
