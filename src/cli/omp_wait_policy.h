// Whether this process's OpenMP threads sleep or spin when a parallel region ends.
#pragma once

#include <string>
#include <vector>

#include "cli/commands.h"

namespace tempo::cli {

/// Why the selected command should run with OMP_WAIT_POLICY=passive, or "" when it should not.
/// By default libgomp's idle threads spin for a while after every parallel region, which is the
/// fastest choice for a process that has the cores to itself (measured: passive waits slow an
/// embedded vit-tiny step by ~25 %), and the slowest when two processes share them:
///  - `tempo worker`, a service that idles between requests while its clients compute;
///  - a master (train, eval, bench on the sim platform) with a --worker on a loopback address,
///    i.e. a worker process on its own cores (docs/workers.md: resnet18 on 2 cores with one such
///    worker, 1.86-2.34 s per step spinning, 1.55-1.60 s passive).
std::string passive_omp_reason(const std::vector<Command>& commands);

/// libgomp reads OMP_WAIT_POLICY once, when it loads: the only way to change it is to start again.
/// execv()s this executable with the same arguments (same pid) and OMP_WAIT_POLICY=passive. Does
/// nothing when OMP_WAIT_POLICY is already set (the user's choice, or our own restart); returns
/// when the restart fails, which costs speed and nothing else. Says why on stderr (`reason`).
void restart_with_passive_omp_waits(char** argv, const std::string& reason);

}  // namespace tempo::cli
