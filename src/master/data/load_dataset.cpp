#include "master/data/load_dataset.h"

#include <stdexcept>

#include "master/data/cifar10.h"
#include "master/data/fashion_mnist.h"

namespace tempo::data {

std::vector<std::string> dataset_names() { return {"fashion-mnist", "cifar10", "synthetic"}; }

Dataset load_dataset(std::string_view name, const std::string& dir, Split split,
                     const SyntheticSpec& synthetic) {
  if (name == "fashion-mnist") return load_fashion_mnist(dir, split);
  if (name == "cifar10") {
    if (dir.empty())
      throw std::invalid_argument(
          "dataset cifar10 needs a data directory (holding data_batch_1.bin .. test_batch.bin "
          "or cifar-10-batches-bin/)");
    return load_cifar10(dir, split);
  }
  if (name == "synthetic") return make_synthetic(synthetic, split);
  std::string known;
  for (const std::string& n : dataset_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown dataset '" + std::string(name) + "' (known: " + known + ")");
}

}  // namespace tempo::data
