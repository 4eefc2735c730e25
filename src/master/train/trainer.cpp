#include "master/train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <tuple>

#include <nlohmann/json.hpp>

#include "master/core/blas.h"
#include "master/data/load_dataset.h"
#include "master/models/model_factory.h"
#include "master/nn/loss.h"
#include "master/optim/adamw.h"
#include "master/optim/sgd.h"
#include "master/tee/key_file.h"
#include "master/tee/platform.h"
#include "master/tee/sealed_checkpoint.h"
#include "master/tee/sealed_dataset.h"
#include "master/train/checkpoint.h"

namespace tempo::train {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::filesystem::path checkpoint_path(const TrainOptions& o) {
  return std::filesystem::path(o.checkpoint_dir) / "last.ckpt";
}

/// The options that must match for a checkpoint to be resumed.
nlohmann::json run_identity(const TrainOptions& o) {
  return {{"model", o.model},           {"dataset", o.dataset},
          {"batch_size", o.batch_size}, {"seed", o.seed},
          {"optimizer", o.optimizer},   {"limit_train", o.limit_train},
          {"image_size", o.image_size}, {"augment", o.augment}};
}

}  // namespace

int default_image_size(const std::string& model, int dataset_size) {
  if (model.rfind("resnet", 0) == 0 || model.rfind("vit", 0) == 0)
    return std::max(32, dataset_size);
  return dataset_size;
}

Trainer::Trainer(TrainOptions options, TrainObserver observer, ComputeAssigner assign_compute)
    : options_(std::move(options)),
      observer_(std::move(observer)),
      assign_compute_(std::move(assign_compute)) {
  if (options_.epochs < 1) throw std::invalid_argument("--epochs must be at least 1");
  if (options_.batch_size < 1) throw std::invalid_argument("--batch-size must be at least 1");
  if (!(options_.lr > 0)) throw std::invalid_argument("--lr must be positive");
  if (options_.resume && options_.checkpoint_dir.empty())
    throw std::invalid_argument("--resume needs --checkpoint-dir");
  if (options_.stop_after_steps > 0 && options_.checkpoint_dir.empty())
    throw std::invalid_argument("--stop-after-steps needs --checkpoint-dir (to resume from)");
  if (!options_.sealed_data.empty() && options_.key_file.empty())
    throw std::invalid_argument("--data (a sealed dataset) needs --key-file");
  blas::set_num_threads(options_.threads);
  build();
}

Trainer::~Trainer() = default;

void Trainer::build() {
  const TrainOptions& o = options_;
  data::SyntheticSpec synth;
  synth.seed = o.seed;
  std::shared_ptr<data::Dataset> train_set, test_set;
  if (!o.key_file.empty() && !tee::process_platform().protects() && observer_.on_message)
    observer_.on_message("WARNING: TEE platform sim: the data key comes from the plain file " +
                         o.key_file + " and this process is not protected");
  if (!o.sealed_data.empty()) {
    // Decrypted in memory only; the name in the authenticated header becomes the run's dataset.
    auto sealed = tee::read_sealed_dataset(o.sealed_data, tee::load_key_file(o.key_file));
    options_.dataset = sealed.train.name();
    train_set = std::make_shared<data::Dataset>(std::move(sealed.train));
    test_set = std::make_shared<data::Dataset>(std::move(sealed.test));
  } else {
    train_set = std::make_shared<data::Dataset>(
        data::load_dataset(o.dataset, o.data_dir, data::Split::kTrain, synth));
    test_set = std::make_shared<data::Dataset>(
        data::load_dataset(o.dataset, o.data_dir, data::Split::kTest, synth));
  }
  if (o.image_size == 0) options_.image_size = default_image_size(o.model, train_set->height());

  data::LoaderOptions lo;
  lo.batch_size = o.batch_size;
  lo.shuffle = true;
  lo.drop_last = true;  // equal-sized steps: BatchNorm statistics and step times stay comparable
  lo.limit = o.limit_train;
  lo.seed = o.seed;
  lo.pad_to = options_.image_size;
  if (o.augment) lo.augmentation = {4, true};
  train_loader_ = std::make_unique<data::DataLoader>(train_set, lo);
  if (train_loader_->num_batches() == 0)
    throw std::invalid_argument(
        "the training set (" + std::to_string(train_loader_->num_samples()) +
        " samples) is smaller than one batch of " + std::to_string(o.batch_size));
  data::LoaderOptions to = lo;
  to.shuffle = false;
  to.drop_last = false;
  to.limit = o.limit_test;
  to.augmentation = {};
  test_loader_ = std::make_unique<data::DataLoader>(test_set, to);

  model_rng_.reseed(o.seed);
  const auto& geo = train_loader_->output_geometry();
  model_ =
      models::make_model(o.model, geo.channels, geo.height, train_set->num_classes(), model_rng_);
  if (assign_compute_)
    assign_compute_(*model_, {o.batch_size, geo.channels, geo.height, geo.width});

  auto params = nn::named_parameters(*model_);
  if (o.optimizer == "sgd") {
    optimizer_ = std::make_unique<optim::SGD>(
        params, optim::SgdOptions{o.lr, o.momentum, o.nesterov, o.weight_decay});
  } else if (o.optimizer == "adamw") {
    optim::AdamWOptions a;
    a.lr = o.lr;
    a.weight_decay = o.weight_decay;
    optimizer_ = std::make_unique<optim::AdamW>(params, a);
  } else {
    throw std::invalid_argument("unknown optimizer '" + o.optimizer + "' (valid: sgd, adamw)");
  }
  optim::LrScheduleConfig sc;
  sc.kind = optim::parse_lr_schedule_kind(o.lr_schedule);
  sc.base_lr = o.lr;
  sc.warmup_steps = o.warmup_steps;
  sc.steps_per_epoch = train_loader_->num_batches();
  sc.step_size = o.lr_step_size;
  sc.gamma = o.lr_gamma;
  sc.total_steps = train_loader_->num_batches() * o.epochs;
  schedule_ = std::make_unique<optim::LrSchedule>(sc);
}

void Trainer::save(const std::string& why) {
  if (options_.checkpoint_dir.empty()) return;
  std::filesystem::create_directories(options_.checkpoint_dir);
  Checkpoint ckpt;
  ckpt.meta["run"] = run_identity(options_);
  ckpt.meta["step"] = step_;
  ckpt.meta["epoch"] = epoch_;
  const auto ls = train_loader_->state();
  ckpt.meta["loader"] = {{"epoch", ls.epoch}, {"next_batch", ls.next_batch}};
  ckpt.meta["model_rng"] = rng_state_to_json(model_rng_.state());
  ckpt.meta["reason"] = why;
  add_model_state(ckpt, *model_);
  add_optimizer_state(ckpt, *optimizer_);
  if (!options_.key_file.empty()) {
    // Sealed, one version above the last one recorded next to it (rollback detection).
    const tee::Key key = tee::load_key_file(options_.key_file);
    const auto recorded = tee::read_checkpoint_state(checkpoint_path(options_), key);
    tee::save_sealed_checkpoint(checkpoint_path(options_), key, ckpt,
                                (recorded ? recorded->version : 0) + 1);
  } else {
    save_checkpoint(checkpoint_path(options_), ckpt);
  }
  if (observer_.on_message)
    observer_.on_message("checkpoint written: " + checkpoint_path(options_).string() + " (" + why +
                         ", step " + std::to_string(step_) + ")");
}

void Trainer::restore() {
  const auto path = checkpoint_path(options_);
  if (!std::filesystem::exists(path)) {
    if (observer_.on_message)
      observer_.on_message("no checkpoint at " + path.string() + ": starting fresh");
    return;
  }
  if (options_.key_file.empty() && tee::looks_sealed(path))
    throw std::runtime_error(path.string() + ": the checkpoint is sealed: pass --key-file");
  // With a key, only a sealed checkpoint (authentic, not rolled back) is accepted.
  Checkpoint ckpt =
      options_.key_file.empty()
          ? load_checkpoint(path)
          : tee::load_sealed_checkpoint(path, tee::load_key_file(options_.key_file)).checkpoint;
  if (ckpt.meta.value("run", nlohmann::json{}) != run_identity(options_))
    throw std::runtime_error(path.string() + ": checkpoint belongs to another run: " +
                             ckpt.meta.value("run", nlohmann::json{}).dump() + " vs " +
                             run_identity(options_).dump());
  restore_model_state(ckpt, *model_);
  restore_optimizer_state(ckpt, *optimizer_);
  step_ = ckpt.meta.at("step").get<int64_t>();
  epoch_ = ckpt.meta.at("epoch").get<int>();
  data::DataLoader::State ls;
  ls.epoch = ckpt.meta.at("loader").at("epoch").get<uint64_t>();
  ls.next_batch = ckpt.meta.at("loader").at("next_batch").get<int64_t>();
  train_loader_->set_state(ls);
  model_rng_.set_state(rng_state_from_json(ckpt.meta.at("model_rng")));
  if (observer_.on_message)
    observer_.on_message("resumed from " + path.string() + " at epoch " +
                         std::to_string(epoch_ + 1) + ", step " + std::to_string(step_));
}

std::pair<double, double> Trainer::evaluate() {
  if (observer_.before_evaluation) observer_.before_evaluation();
  model_->train(false);
  nn::CrossEntropyLoss loss_fn;
  int64_t correct = 0, seen = 0;
  double loss_sum = 0;
  test_loader_->start_epoch(0);
  while (auto batch = test_loader_->next()) {
    Tensor logits = model_->forward(batch->images);
    const auto n = static_cast<int64_t>(batch->labels.size());
    loss_sum += double(loss_fn.forward(logits, batch->labels)) * double(n);
    correct += loss_fn.correct();
    seen += n;
  }
  model_->train(true);
  if (seen == 0) return {0.0, 0.0};
  return {double(correct) / double(seen), loss_sum / double(seen)};
}

TrainSummary Trainer::run() {
  const auto start = Clock::now();
  if (options_.resume) restore();
  TrainSummary summary;
  nn::CrossEntropyLoss loss_fn(options_.label_smoothing);
  const int64_t steps_per_epoch = train_loader_->num_batches();
  int64_t steps_this_run = 0;
  std::ofstream metrics;
  if (!options_.metrics_out.empty()) {
    metrics.open(options_.metrics_out, options_.resume ? std::ios::app : std::ios::trunc);
    if (!metrics) throw std::runtime_error(options_.metrics_out + ": cannot open for writing");
  }
  bool trained_an_epoch = false;
  model_->train(true);
  // A checkpoint taken at the end of an epoch has loader.next_batch == steps_per_epoch.
  for (; epoch_ < options_.epochs; ++epoch_) {
    const auto ls = train_loader_->state();
    const bool resuming_mid_epoch = ls.epoch == static_cast<uint64_t>(epoch_) &&
                                    ls.next_batch > 0 && ls.next_batch < steps_per_epoch;
    if (!resuming_mid_epoch) train_loader_->start_epoch(static_cast<uint64_t>(epoch_));
    double loss_sum = 0;
    int64_t correct = 0, seen = 0, steps_in_epoch = 0;
    while (true) {
      if (options_.stop_after_steps > 0 && steps_this_run >= options_.stop_after_steps) {
        save("stopped after " + std::to_string(steps_this_run) + " steps as asked");
        summary.stopped_early = true;
        summary.steps = step_;
        summary.epochs_done = epoch_;
        summary.seconds = seconds_since(start);
        return summary;
      }
      const data::DataLoader::State before_batch = train_loader_->state();
      const int64_t batch_index = before_batch.next_batch;
      auto batch = train_loader_->next();
      if (!batch) break;
      if (observer_.before_step)
        observer_.before_step(step_ + 1, steps_per_epoch * int64_t{options_.epochs});
      const auto t_step = Clock::now();
      optimizer_->set_lr(schedule_->lr_at(step_));
      optimizer_->zero_grad();
      float loss = 0;
      try {
        Tensor logits = model_->forward(batch->images);
        loss = loss_fn.forward(logits, batch->labels);
        if (!std::isfinite(loss))
          throw std::runtime_error("training diverged: loss is " + std::to_string(loss) +
                                   " at step " + std::to_string(step_) + " (try a lower --lr)");
        model_->backward(loss_fn.backward());
      } catch (const nn::ComputeUnavailableError& e) {
        // Weights and optimizer state are those of the last completed step (this one never
        // reached optimizer_->step()); the batch is replayed on resume.
        train_loader_->set_state(before_batch);
        save(std::string("stopped: ") + e.what());
        throw;
      }
      optimizer_->step();
      const double dt = seconds_since(t_step);
      ++step_;
      ++steps_this_run;
      ++steps_in_epoch;
      loss_sum += loss;
      correct += loss_fn.correct();
      seen += static_cast<int64_t>(batch->labels.size());
      const double images_per_second = double(batch->labels.size()) / dt;
      if (metrics)
        metrics << nlohmann::json{{"step", step_},
                                  {"epoch", epoch_ + 1},
                                  {"loss", loss},
                                  {"lr", optimizer_->lr()},
                                  {"images_per_s", images_per_second},
                                  {"step_seconds", dt}}
                       .dump()
                << '\n';
      if (observer_.on_step)
        observer_.on_step(epoch_, batch_index + 1, steps_per_epoch, loss, images_per_second);
    }
    trained_an_epoch = true;
    summary.train_loss = steps_in_epoch ? loss_sum / double(steps_in_epoch) : 0.0;
    summary.train_accuracy = seen ? double(correct) / double(seen) : 0.0;
    double acc = 0, test_loss = 0;
    try {
      std::tie(acc, test_loss) = evaluate();
    } catch (const nn::ComputeUnavailableError& e) {
      // The epoch's training is complete: resume at the next one.
      ++epoch_;
      save("stopped during the evaluation of epoch " + std::to_string(epoch_) + ": " + e.what());
      --epoch_;
      throw;
    }
    summary.test_accuracy = acc;
    summary.test_loss = test_loss;
    if (metrics)
      metrics << nlohmann::json{{"epoch", epoch_ + 1},
                                {"step", step_},
                                {"test_accuracy", acc},
                                {"test_loss", test_loss},
                                {"train_loss", summary.train_loss}}
                     .dump()
              << std::endl;
    if (observer_.on_epoch) observer_.on_epoch(epoch_, acc, test_loss, summary.train_loss);
    const int finished = epoch_;
    epoch_ = finished + 1;
    save("end of epoch " + std::to_string(finished + 1));
    epoch_ = finished;
  }
  if (!trained_an_epoch) std::tie(summary.test_accuracy, summary.test_loss) = evaluate();
  summary.steps = step_;
  summary.epochs_done = epoch_;
  summary.seconds = seconds_since(start);
  return summary;
}

}  // namespace tempo::train
