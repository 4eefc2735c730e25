#include "master/train/step_benchmark.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>

#include "master/core/blas.h"
#include "master/models/model_factory.h"
#include "master/nn/loss.h"
#include "master/optim/sgd.h"

namespace tempo::train {

namespace {
double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
}  // namespace

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

StepBenchmarkResult run_step_benchmark(const StepBenchmarkOptions& o,
                                       const ComputeAssigner& assign_compute) {
  using Clock = std::chrono::steady_clock;
  auto secs = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  };
  blas::set_num_threads(o.threads);
  Rng rng(o.seed);
  auto model = models::make_model(o.model, o.channels, o.image_size, o.num_classes, rng);
  if (assign_compute)
    assign_compute(*model, {o.batch_size, o.channels, o.image_size, o.image_size});
  optim::SGD sgd(nn::named_parameters(*model), optim::SgdOptions{0.01, 0.9, false, 5e-4});
  Tensor x({o.batch_size, o.channels, o.image_size, o.image_size});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(rng.normal());
  std::vector<int32_t> labels(static_cast<size_t>(o.batch_size));
  for (auto& l : labels) l = static_cast<int32_t>(rng.below(static_cast<uint64_t>(o.num_classes)));
  nn::CrossEntropyLoss loss_fn;
  model->train(true);

  StepBenchmarkResult r;
  r.parameters = nn::parameter_count(*model);
  std::vector<double> fw, bw, op;
  for (int s = 0; s < o.warmup_steps + o.steps; ++s) {
    const auto t0 = Clock::now();
    sgd.zero_grad();
    Tensor logits = model->forward(x);
    loss_fn.forward(logits, labels);
    const auto t1 = Clock::now();
    model->backward(loss_fn.backward());
    const auto t2 = Clock::now();
    sgd.step();
    const auto t3 = Clock::now();
    if (s < o.warmup_steps) continue;
    r.step_seconds.push_back(secs(t0, t3));
    fw.push_back(secs(t0, t1));
    bw.push_back(secs(t1, t2));
    op.push_back(secs(t2, t3));
  }
  r.median_step_seconds = median(r.step_seconds);
  r.forward_seconds = median(fw);
  r.backward_seconds = median(bw);
  r.optimizer_seconds = median(op);
  r.peak_rss_bytes = peak_rss_bytes();
  return r;
}

}  // namespace tempo::train
