// A minimal 8-bit greyscale PNG encoder (zlib), for the attack's side-by-side examples.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tempo::attack {

/// Writes `pixels` (row-major, width x height, 0..255) as a greyscale PNG. Throws
/// std::runtime_error when the file cannot be written.
void write_png_gray(const std::string& path, int64_t width, int64_t height,
                    const std::vector<uint8_t>& pixels);

}  // namespace tempo::attack
