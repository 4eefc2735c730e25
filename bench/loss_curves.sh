#!/usr/bin/env bash
# Tempo mode against plain mode on the same seed: per-step training loss over STEPS steps of
# Fashion-MNIST, and the test accuracy after them, for each model (issue #3, item 2).
# Blinding with power-of-two scales is exact, so the two runs differ only in the summation order
# inside the products (the worker's GEMM on permuted operands, per-shard sums) and, in patch mode,
# the rounding of its random-significand scales (docs/protocol.md): the first steps
# agree to a few ulps and the difference grows with training's sensitivity to rounding. The
# report gives, per model, the largest and the median relative difference of the per-step losses,
# the step where the largest occurs, and both test accuracies (target: within 0.3 points).
# Control: plain mode with --threads 1 against plain with THREADS threads, i.e. the same training
# with nothing changed but the summation order inside the BLAS/oneDNN kernels: how far two runs
# that are both "correct" drift apart. A protocol error would show as a difference far larger
# than the control's from the first backward pass on.
# Usage: bench/loss_curves.sh [BUILD_DIR] [OUT_JSON]
#   env: MODELS ("cnn resnet18 vit-tiny"), STEPS (200), BATCH (32), LIMIT_TEST (0: all 10,000),
#        THREADS (nproc), SEED (1), LR (cnn 0.02, resnet18 0.05, vit-tiny 0.001 with adamw)
set -euo pipefail
build=${1:-build}
out=${2:-bench/results/loss_curves.json}
models=${MODELS:-"cnn resnet18 vit-tiny"}
steps=${STEPS:-200}
batch=${BATCH:-32}
limit_test=${LIMIT_TEST:-0}
threads=${THREADS:-$(nproc)}
seed=${SEED:-1}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for model in $models; do
  case $model in
    vit-*) opt="--optimizer adamw --lr ${LR:-0.001} --weight-decay 0.05" ;;
    resnet*) opt="--lr ${LR:-0.05} --momentum 0.9" ;;
    *) opt="--lr ${LR:-0.02} --momentum 0.9" ;;
  esac
  for run in plain:plain:$threads tempo:tempo:$threads control:plain:1; do
    IFS=: read -r name mode th <<<"$run"
    # shellcheck disable=SC2086  # the flags are words
    "$build/tempo" train --model "$model" --dataset fashion-mnist --mode "$mode" --epochs 1 \
      --batch-size "$batch" --limit-train $((steps * batch)) --limit-test "$limit_test" \
      --threads "$th" --seed "$seed" $opt --metrics-out "$tmp/$model.$name.jsonl" \
      2>"$tmp/$model.$name.err" | tail -n 1 >"$tmp/$model.$name.json"
  done
done
/usr/bin/python3 - "$tmp" "$out" "$models" <<'PY'
import json, statistics, sys
tmp, out, models = sys.argv[1], sys.argv[2], sys.argv[3].split()
def losses(path):
    return [json.loads(l)["loss"] for l in open(path) if '"loss"' in l]
res = {}
def compare(a, b):
    rel = [abs(y - x) / abs(x) for x, y in zip(a, b)]
    worst = max(range(len(rel)), key=rel.__getitem__)
    return rel, worst
print(f"{'model':9s} {'steps':>5s} {'max rel diff':>12s} {'at step':>7s} {'median rel':>10s} "
      f"{'plain acc':>9s} {'tempo acc':>9s} {'diff pp':>7s} | control: {'max rel':>8s} "
      f"{'median':>8s} {'acc':>6s} {'diff pp':>7s}")
for m in models:
    p, t, c = (losses(f"{tmp}/{m}.{n}.jsonl") for n in ("plain", "tempo", "control"))
    acc = {n: json.load(open(f"{tmp}/{m}.{n}.json"))["test_accuracy"]
           for n in ("plain", "tempo", "control")}
    rel, worst = compare(p, t)
    crel, cworst = compare(p, c)
    res[m] = {"steps": len(p), "max_rel_diff": rel[worst], "max_at_step": worst + 1,
              "median_rel_diff": statistics.median(rel), "rel_diff_per_step": rel,
              "plain_loss": p, "tempo_loss": t, "control_loss": c,
              "plain_test_accuracy": acc["plain"], "tempo_test_accuracy": acc["tempo"],
              "accuracy_diff_pp": 100 * (acc["tempo"] - acc["plain"]),
              "control_max_rel_diff": crel[cworst], "control_median_rel_diff": statistics.median(crel),
              "control_test_accuracy": acc["control"],
              "control_accuracy_diff_pp": 100 * (acc["control"] - acc["plain"])}
    r = res[m]
    print(f"{m:9s} {len(p):5d} {rel[worst]:12.2e} {worst + 1:7d} {r['median_rel_diff']:10.2e} "
          f"{100 * acc['plain']:9.2f} {100 * acc['tempo']:9.2f} {r['accuracy_diff_pp']:+7.2f} | "
          f"{' ' * 9}{crel[cworst]:8.2e} {r['control_median_rel_diff']:8.2e} "
          f"{100 * acc['control']:6.2f} {r['control_accuracy_diff_pp']:+7.2f}")
json.dump(res, open(out, "w"))
print(f"wrote {out}")
PY
