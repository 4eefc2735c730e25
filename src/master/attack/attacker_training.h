// The attacker's own training and evaluation (attack 3: model theft by fine-tuning).
#pragma once

#include <cstdint>
#include <string>

#include "master/data/data_loader.h"
#include "master/nn/module.h"

namespace tempo::attack {

/// Top-1 accuracy of `model` over every batch of `loader` (evaluation mode).
double accuracy(nn::Module& model, data::DataLoader& loader);

/// Re-estimates BatchNorm running statistics from `batches` batches of `loader` (labels unused):
/// the victim's statistics never leave the TEE, but any attacker with unlabelled inputs can
/// recompute them for the weights it has. No-op for models without batch norm.
void recalibrate_batch_norm(nn::Module& model, data::DataLoader& loader, int batches);

/// Trains `model` for `steps` steps on `loader`, cycling through its epochs, with cosine decay
/// from `lr`: optimizer "sgd" (momentum 0.9, weight decay 5e-4) or "adamw" (weight decay 0.05,
/// what vision transformers train with). Throws std::invalid_argument for another name.
void train_steps(nn::Module& model, data::DataLoader& loader, int64_t steps, double lr,
                 const std::string& optimizer = "sgd");

/// Copies every parameter and buffer of `src` into `dst` (same architecture).
void copy_state(nn::Module& src, nn::Module& dst);

}  // namespace tempo::attack
