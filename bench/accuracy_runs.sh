#!/usr/bin/env bash
# Trains one model to the end of its schedule in --mode plain and in --mode tempo (default policy,
# embedded worker) with the same seed, both at once on THREADS threads each, and writes their
# per-epoch test accuracy and final JSON summaries side by side (issue #3: same final accuracy
# within 0.3 points). Wall times are not comparable: the two runs share the machine.
# Usage: bench/accuracy_runs.sh [BUILD_DIR] [OUT_JSON] -- TRAIN_FLAGS...
#   e.g. bench/accuracy_runs.sh build bench/results/accuracy_vit_tiny.json -- --model vit-tiny \
#          --optimizer adamw --lr 1e-3 --weight-decay 0.05 --seed 1 --epochs 5
#   env: THREADS (1: master threads, and the embedded worker's in tempo mode), NICE (19)
set -euo pipefail
build=${1:-build}
out=${2:-bench/results/accuracy.json}
shift 2 || true
[[ ${1:-} == "--" ]] && shift
threads=${THREADS:-1}
niceness=${NICE:-19}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The binary is copied so that rebuilding the tree while this runs (hours) cannot change it.
cp "$build/tempo" "$tmp/tempo"

nice -n "$niceness" "$tmp/tempo" train "$@" --threads "$threads" --log-every 200 --mode plain \
  >"$tmp/plain.out" 2>"$tmp/plain.err" &
plain=$!
nice -n "$niceness" "$tmp/tempo" train "$@" --threads "$threads" --log-every 200 --mode tempo \
  --worker-threads "$threads" >"$tmp/tempo.out" 2>"$tmp/tempo.err" &
tempo=$!
status=0
wait "$plain" || status=$?
wait "$tempo" || status=$?
if [[ $status -ne 0 ]]; then
  tail -n 5 "$tmp/plain.err" "$tmp/tempo.err" >&2
  echo "accuracy_runs.sh: a training run failed (status $status)" >&2
  exit "$status"
fi

/usr/bin/python3 - "$tmp" "$out" "$threads" "$*" <<'PY'
import json, re, sys
tmp, out, threads, flags = sys.argv[1:5]
res = {"train_flags": flags, "threads_each": int(threads), "runs": {}}
for mode in ("plain", "tempo"):
    summary = json.loads([l for l in open(f"{tmp}/{mode}.out") if l.startswith("{")][-1])
    acc = [float(a) for a in re.findall(r"test accuracy ([0-9.]+)%", open(f"{tmp}/{mode}.err").read())]
    res["runs"][mode] = {"per_epoch_test_accuracy_percent": acc, "summary": summary}
    print(f"{mode:6s} " + " ".join(f"{a:6.2f}" for a in acc) + f"   ({summary['seconds']:.0f} s)")
p, t = (res["runs"][m]["summary"]["test_accuracy"] * 100 for m in ("plain", "tempo"))
res["final_difference_points"] = t - p
print(f"tempo - plain at the end: {t - p:+.2f} points")
json.dump(res, open(out, "w"), indent=1)
print(f"wrote {out}")
PY
