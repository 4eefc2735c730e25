// The one error type of the dataset loaders: a file and what is wrong with it.
#pragma once

#include <stdexcept>
#include <string>

namespace tempo::data {

/// Thrown for every unreadable or malformed dataset file. what() is "<path>: <problem>".
class FileError : public std::runtime_error {
 public:
  FileError(const std::string& path, const std::string& problem)
      : std::runtime_error(path + ": " + problem), path_(path) {}
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace tempo::data
