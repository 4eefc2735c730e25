#!/usr/bin/env python3
"""Two or more `tempo` binaries or flag sets, alternated round by round on one machine.

Each round runs every configuration once (`tempo bench ... --json`), so load drift on a shared
machine hits all of them alike. Per configuration it prints the medians over rounds of: the
run's median step, and the per-step seconds inside the integrity checks
(integrity_check_seconds) and in blinding and unblinding (traffic.seconds), then every round's
step; then, per configuration, the median over rounds of its ratio to the first configuration in
the same round (step, checks, blind+unblind+checks): steadier than a ratio of medians on a
machine whose speed drifts between rounds. Used to measure a change: build the old binary aside (e.g. `git stash; cmake --build
build --target tempo; cp build/tempo /tmp/tempo_old; git stash pop`) and compare.

Usage: bench/ab_steps.py ROUNDS MODEL BATCH STEPS LABEL=BINARY[:FLAGS] ...
  e.g. bench/ab_steps.py 8 vit-tiny 64 20 "old=/tmp/tempo_old:--mode tempo" \\
           "new=build/tempo:--mode tempo" "t0=build/tempo:--mode tempo --verify-rounds 0"
"""
import json
import statistics
import subprocess
import sys


def main(argv):
    if len(argv) < 6 or any("=" not in c for c in argv[5:]):
        sys.exit(__doc__)
    rounds, model, batch, steps = int(argv[1]), argv[2], argv[3], argv[4]
    configs = [c.split("=", 1) for c in argv[5:]]
    results = {label: [] for label, _ in configs}
    for _ in range(rounds):
        for label, spec in configs:
            binary, _, flags = spec.partition(":")
            cmd = [binary, "bench", "--model", model, "--batch-size", batch, "--steps", steps,
                   "--warmup", "1", "--json"] + flags.split()
            run = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if run.returncode != 0:
                sys.exit(f"{' '.join(cmd)} failed ({run.returncode}):\n{run.stderr[-2000:]}")
            d = json.loads(run.stdout.strip().splitlines()[-1])
            n = d["steps"] + 1  # the totals include the warm-up step
            t = d.get("traffic", {}).get("seconds", {})
            results[label].append((d["median_step_seconds"],
                                   d.get("integrity_check_seconds", 0.0) / n,
                                   t.get("blind", 0.0) / n, t.get("unblind", 0.0) / n))
    print(f"{'config':10s} {'step s':>8s} {'checks':>8s} {'blind':>8s} {'unblind':>8s} "
          f"{'b+u+c':>8s}  rounds (step s)")
    for label, rows in results.items():
        step, checks, blind, unblind = (statistics.median(c) for c in zip(*rows))
        print(f"{label:10s} {step:8.4f} {checks:8.4f} {blind:8.4f} {unblind:8.4f} "
              f"{checks + blind + unblind:8.4f}  " + " ".join(f"{r[0]:.4f}" for r in rows))
    # Within-round ratios: a machine whose speed drifts between rounds moves both sides alike.
    first_label, first = next(iter(results.items()))
    print(f"\nmedian over rounds of the ratio to {first_label} in the same round:")
    print(f"{'config':10s} {'step':>8s} {'checks':>8s} {'b+u+c':>8s}")
    for label, rows in results.items():
        def ratio(f):
            return statistics.median(f(r) / f(b) if f(b) > 0 else float("nan")
                                     for r, b in zip(rows, first))
        print(f"{label:10s} {ratio(lambda r: r[0]):8.3f} {ratio(lambda r: r[1]):8.3f} "
              f"{ratio(lambda r: r[1] + r[2] + r[3]):8.3f}")


if __name__ == "__main__":
    main(sys.argv)
