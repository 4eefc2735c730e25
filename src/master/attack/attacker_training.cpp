#include "master/attack/attacker_training.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <numbers>
#include <stdexcept>

#include "master/nn/batchnorm2d.h"
#include "master/nn/loss.h"
#include "master/optim/adamw.h"
#include "master/optim/sgd.h"

namespace tempo::attack {

double accuracy(nn::Module& model, data::DataLoader& loader) {
  model.train(false);
  nn::CrossEntropyLoss loss;
  int64_t correct = 0, total = 0;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    loss.forward(model.forward(batch->images), batch->labels);
    correct += loss.correct();
    total += static_cast<int64_t>(batch->labels.size());
  }
  return total ? static_cast<double>(correct) / static_cast<double>(total) : 0.0;
}

void recalibrate_batch_norm(nn::Module& model, data::DataLoader& loader, int batches) {
  std::vector<nn::BatchNorm2d*> bns;
  for (const auto& nm : nn::named_modules(model))
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(nm.module)) bns.push_back(bn);
  if (bns.empty()) return;
  for (auto* bn : bns) {
    bn->running_mean().fill(0.0f);
    bn->running_var().fill(1.0f);
  }
  model.train(true);
  int done = 0;
  for (uint64_t epoch = 0; done < batches; ++epoch) {
    loader.start_epoch(epoch);
    bool any = false;
    while (done < batches) {
      auto batch = loader.next();
      if (!batch) break;
      any = true;
      model.forward(batch->images);  // updates the running statistics (momentum 0.1)
      ++done;
    }
    if (!any) break;
  }
  model.train(false);
}

void train_steps(nn::Module& model, data::DataLoader& loader, int64_t steps, double lr,
                 const std::string& optimizer) {
  std::unique_ptr<optim::Optimizer> opt;
  if (optimizer == "sgd")
    opt = std::make_unique<optim::SGD>(nn::named_parameters(model),
                                       optim::SgdOptions{lr, 0.9, false, 5e-4});
  else if (optimizer == "adamw")
    opt = std::make_unique<optim::AdamW>(nn::named_parameters(model),
                                         optim::AdamWOptions{lr, 0.9, 0.999, 1e-8, 0.05});
  else
    throw std::invalid_argument("train_steps: unknown optimizer '" + optimizer +
                                "' (sgd or adamw)");
  nn::CrossEntropyLoss loss;
  model.train(true);
  int64_t step = 0;
  for (uint64_t epoch = 0; step < steps; ++epoch) {
    loader.start_epoch(epoch);
    bool any = false;
    while (step < steps) {
      auto batch = loader.next();
      if (!batch) break;
      any = true;
      opt->set_lr(lr * 0.5 *
                  (1 + std::cos(std::numbers::pi * static_cast<double>(step) /
                                static_cast<double>(steps))));
      opt->zero_grad();
      loss.forward(model.forward(batch->images), batch->labels);
      model.backward(loss.backward());
      opt->step();
      ++step;
    }
    if (!any) throw std::invalid_argument("train_steps: the labelled set yields no batch");
  }
  model.train(false);
}

void copy_state(nn::Module& src, nn::Module& dst) {
  auto sp = nn::named_parameters(src), dp = nn::named_parameters(dst);
  auto sb = nn::named_buffers(src), db = nn::named_buffers(dst);
  if (sp.size() != dp.size() || sb.size() != db.size())
    throw std::invalid_argument("copy_state: different architectures");
  for (size_t i = 0; i < sp.size(); ++i) {
    if (sp[i].param->value.numel() != dp[i].param->value.numel())
      throw std::invalid_argument("copy_state: parameter " + sp[i].path + " differs");
    std::memcpy(dp[i].param->value.data(), sp[i].param->value.data(),
                sizeof(float) * static_cast<size_t>(sp[i].param->value.numel()));
  }
  for (size_t i = 0; i < sb.size(); ++i)
    std::memcpy(db[i].tensor->data(), sb[i].tensor->data(),
                sizeof(float) * static_cast<size_t>(sb[i].tensor->numel()));
}

}  // namespace tempo::attack
