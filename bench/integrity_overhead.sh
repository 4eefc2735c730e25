#!/usr/bin/env bash
# Cost of the integrity checks (docs/integrity.md): tempo-mode training-step time with
# --verify-rounds 0, 1 and 2 side by side. The settings alternate within each round (0,1,2,0,1,2,
# ...), ROUNDS rounds, so that load drift on a shared machine hits all of them alike; per setting
# the median over rounds of each run's median step, the overhead against t=0, and the time the
# master spent inside the checks per step (integrity_check_seconds), which shared-machine noise
# does not swamp the way it swamps a difference of two step times.
# Usage: bench/integrity_overhead.sh [BUILD_DIR] [OUT_JSON]
#        env: ROUNDS (3), MODELS ("resnet18:16 vit-tiny:32"), STEPS (4), WARMUP (1), THREADS (0),
#             FLAGS (more `tempo bench` flags for every run, e.g. "--attention-in-tee")
set -euo pipefail
build=${1:-build}
out=${2:-bench/results/integrity_overhead.json}
rounds=${ROUNDS:-3}
steps=${STEPS:-4}
warmup=${WARMUP:-1}
threads=${THREADS:-0}
models=${MODELS:-"resnet18:16 vit-tiny:32"}
read -r -a extra <<<"${FLAGS:-}"
mkdir -p "$(dirname "$out")"
tmp=$(mktemp)
load_before=$(cat /proc/loadavg)
for spec in $models; do
  model=${spec%%:*}
  batch=${spec##*:}
  for r in $(seq "$rounds"); do
    for t in 0 1 2; do
      "$build/tempo" bench --mode tempo --model "$model" --batch-size "$batch" --steps "$steps" \
        --warmup "$warmup" --threads "$threads" --verify-rounds "$t" ${extra[@]+"${extra[@]}"} \
        --json 2>/dev/null \
        | tail -n 1 | sed "s/^{/{\"t\":$t,\"round\":$r,/" >>"$tmp"
    done
  done
done
load_after=$(cat /proc/loadavg)
/usr/bin/python3 - "$tmp" "$out" "$load_before" "$load_after" "$warmup" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
WARMUP = int(sys.argv[5])
res = {"loadavg_before": sys.argv[3], "loadavg_after": sys.argv[4], "nproc": __import__("os").cpu_count(), "models": {}}
print(f"{'model':10s} {'batch':>5s} {'t=0 (s)':>9s} {'t=1 (s)':>9s} {'t=2 (s)':>9s} {'t=1 over':>9s} {'t=2 over':>9s}"
      f" {'chk1 (s)':>8s} {'share':>7s} {'chk2 (s)':>8s} {'share':>7s}")
for m in sorted({r["model"] for r in rows}):
    med = {t: statistics.median([r["median_step_seconds"] for r in rows if r["model"] == m and r["t"] == t]) for t in (0, 1, 2)}
    per = {t: [r["median_step_seconds"] for r in rows if r["model"] == m and r["t"] == t] for t in (0, 1, 2)}
    checks = {t: max(r.get("integrity_checks", 0) for r in rows if r["model"] == m and r["t"] == t) for t in (0, 1, 2)}
    # Time inside the checks per step (warm-up steps included in the count), median over rounds:
    # a direct measure that load on a shared machine inflates like the step itself.
    cps = {t: statistics.median([r.get("integrity_check_seconds", 0.0) / (r["steps"] + r.get("warmup", WARMUP)) for r in rows if r["model"] == m and r["t"] == t]) for t in (0, 1, 2)}
    batch = rows[[r["model"] for r in rows].index(m)]["batch_size"]
    res["models"][m] = {"batch_size": batch, "median_step_s": med, "rounds": per, "integrity_checks": checks,
                        "overhead_t1": med[1] / med[0] - 1, "overhead_t2": med[2] / med[0] - 1,
                        "check_seconds_per_step": cps,
                        "check_share_t1": cps[1] / med[1], "check_share_t2": cps[2] / med[2]}
    print(f"{m:10s} {batch:5d} {med[0]:9.3f} {med[1]:9.3f} {med[2]:9.3f} {100*(med[1]/med[0]-1):8.1f}% {100*(med[2]/med[0]-1):8.1f}%"
          f" {cps[1]:8.3f} {100*cps[1]/med[1]:6.1f}% {cps[2]:8.3f} {100*cps[2]/med[2]:6.1f}%")
print("loadavg before:", sys.argv[3], "after:", sys.argv[4])
json.dump(res, open(sys.argv[2], "w"), indent=1)
PY
rm -f "$tmp"
