// Constructors of the platform implementations (internal to src/master/tee/).
#pragma once

#include <memory>

#include "master/tee/platform.h"

namespace tempo::tee::detail {

std::unique_ptr<Platform> make_sim_platform(std::string reason);
/// Throws std::runtime_error when Gramine's /dev/attestation is absent.
std::unique_ptr<Platform> make_gramine_sgx_platform(const SystemView& sys);
/// Throws std::runtime_error when configfs-tsm is absent.
std::unique_ptr<Platform> make_tsm_platform(PlatformKind kind, const SystemView& sys);

/// Reads a small file whole; nullopt when it cannot be opened.
std::optional<std::string> read_small_file(const std::filesystem::path& path);
/// Writes bytes to an existing (device) file; throws std::runtime_error naming it.
void write_device_file(const std::filesystem::path& path, std::span<const uint8_t> bytes);

}  // namespace tempo::tee::detail
