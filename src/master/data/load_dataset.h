// Loading a dataset by name, as the command line and the configuration files name them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "master/data/dataset.h"
#include "master/data/synthetic.h"

namespace tempo::data {

/// The names load_dataset accepts: "fashion-mnist", "cifar10", "synthetic".
std::vector<std::string> dataset_names();

/// Loads the named dataset's split. `dir` is the data directory (for fashion-mnist, empty means
/// kFashionMnistDefaultDir; cifar10 requires one; synthetic ignores it). `synthetic` describes
/// the synthetic dataset and is ignored by the others. Throws std::invalid_argument for an
/// unknown name or a missing cifar10 directory, FileError (a std::runtime_error) for file
/// problems.
Dataset load_dataset(std::string_view name, const std::string& dir, Split split,
                     const SyntheticSpec& synthetic = {});

}  // namespace tempo::data
