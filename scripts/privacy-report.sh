#!/usr/bin/env bash
# Records worker views of a short Fashion-MNIST training under several offload policies and runs
# every attack of `tempo attack` against each (PROTOCOL.md section 6, docs/privacy.md), then
# times a training step of each policy against plain mode, side by side (`tempo bench`).
# Writes OUT/table.md plus, per policy, the training summary, the key-space report, the attack
# JSON, the step timings and a PNG of attack 4. The view keeps the steps RECORD_STEPS selects
# (default: the last one, which is what the attacks replay; a resnet18 step at batch 64 is about
# 1.4 GB); each view is deleted once attacked unless KEEP_VIEWS=1.
#
#   scripts/privacy-report.sh [OUT]       (env: TEMPO, MODEL, LIMIT_TRAIN, LIMIT_TEST, EPOCHS,
#                                          FINETUNE_STEPS, THREADS, POLICIES, RECORD_STEPS,
#                                          BENCH_STEPS, KEEP_VIEWS, TRAIN_FLAGS, ATTACK_FLAGS)
# TRAIN_FLAGS go to every victim's training (e.g. vit-tiny: "--optimizer adamw --lr 1e-3
# --weight-decay 0.05"), ATTACK_FLAGS to every attack (e.g. "--finetune-optimizer adamw
# --finetune-lr 1e-3").
set -euo pipefail
OUT=${1:-privacy-report}
TEMPO=${TEMPO:-build/tempo}
MODEL=${MODEL:-cnn}
RECORD_STEPS=${RECORD_STEPS:-last}
BENCH_STEPS=${BENCH_STEPS:-5}
LIMIT_TRAIN=${LIMIT_TRAIN:-3200}
LIMIT_TEST=${LIMIT_TEST:-1000}
EPOCHS=${EPOCHS:-1}
FINETUNE_STEPS=${FINETUNE_STEPS:-150}
THREADS=${THREADS:-0}
# name|train flags
ALL_POLICIES=(
  "patch|"
  "channel|--conv-mode channel"
  "patch-sigma0|--sigma 0"
  "channel-sigma0|--conv-mode channel --sigma 0"
  "patch-conv2-in-tee|--keep-in-tee conv2"
  "channel-first-offloaded|--conv-mode channel --offload-first-layer"
)
POLICIES=${POLICIES:-all}
mkdir -p "$OUT"
TABLE="$OUT/table.md"
case $MODEL in
  resnet* | vit*) IMAGE_SIZE=32 ;;  # as `tempo train` pads Fashion-MNIST for these models
  *) IMAGE_SIZE=28 ;;
esac
echo "| policy ($MODEL) | key bits (weakest tensor) | victim acc | init | attack 1 direct | attack 2 aligned | attack 3 1%: stolen / scratch | 5%: stolen / scratch | attack 4 PSNR / SSIM (control) | step s: tempo / plain |" >"$TABLE"
echo "|---|---|---|---|---|---|---|---|---|---|" >>"$TABLE"
for entry in "${ALL_POLICIES[@]}"; do
  name=${entry%%|*}
  flags=${entry#*|}
  if [[ $POLICIES != all && " $POLICIES " != *" $name "* ]]; then continue; fi
  view="$OUT/$name.view"
  echo "== $name: training with $flags" >&2
  # shellcheck disable=SC2086
  "$TEMPO" train --mode tempo --model "$MODEL" --dataset fashion-mnist --limit-train "$LIMIT_TRAIN" \
    --limit-test "$LIMIT_TEST" --epochs "$EPOCHS" --threads "$THREADS" --privacy-report \
    --record-view "$view" --record-view-steps "$RECORD_STEPS" $flags ${TRAIN_FLAGS:-} \
    >"$OUT/$name.train.json" 2>"$OUT/$name.train.log"
  echo "== $name: attacking" >&2
  # shellcheck disable=SC2086
  "$TEMPO" attack --view "$view" --model "$MODEL" --dataset fashion-mnist --limit-train "$LIMIT_TRAIN" \
    --limit-test "$LIMIT_TEST" --finetune-steps "$FINETUNE_STEPS" --threads "$THREADS" \
    --png "$OUT/$name.png" ${ATTACK_FLAGS:-} >"$OUT/$name.attack.json" 2>"$OUT/$name.attack.log"
  [[ ${KEEP_VIEWS:-0} == 1 ]] || rm -rf "$view"
  echo "== $name: timing a step against plain mode" >&2
  bench=("$TEMPO" bench --model "$MODEL" --batch-size 64 --channels 1 --image-size "$IMAGE_SIZE"
    --steps "$BENCH_STEPS" --warmup 1 --threads "$THREADS" --json)
  "${bench[@]}" --mode plain 2>/dev/null | tail -1 >"$OUT/$name.bench-plain.json"
  # shellcheck disable=SC2086
  "${bench[@]}" --mode tempo $flags 2>/dev/null | tail -1 >"$OUT/$name.bench-tempo.json"
  bits=$(grep -o 'weakest offloaded tensor: [0-9.e+]* bits' "$OUT/$name.train.log" | awk '{print $4}')
  python3 - "$OUT/$name.train.json" "$OUT/$name.attack.json" "$name" "$flags" "${bits:-?}" \
    "$OUT/$name.bench-tempo.json" "$OUT/$name.bench-plain.json" >>"$TABLE" <<'PY'
import json, sys
last = lambda f: json.loads(open(f).read().strip().splitlines()[-1])
train, a = last(sys.argv[1]), last(sys.argv[2])
tempo_s, plain_s = (last(f)["median_step_seconds"] for f in sys.argv[6:8])
p = lambda x: "-" if x is None else f"{100 * x:.1f}"
print(f"| {sys.argv[3]} (`{sys.argv[4] or 'default'}`) | {sys.argv[5]} | {p(train['test_accuracy'])} "
      f"| {p(a['init_accuracy'])} | {p(a['direct_accuracy'])} | {p(a['aligned_accuracy'])} "
      f"| {p(a.get('finetune_accuracy_1pct'))} / {p(a.get('scratch_accuracy_1pct'))} "
      f"| {p(a.get('finetune_accuracy_5pct'))} / {p(a.get('scratch_accuracy_5pct'))} "
      f"| {a['reconstruction_psnr']:.1f} / {a['reconstruction_ssim']:.2f} "
      f"({a['reconstruction_control_psnr']:.1f} / {a['reconstruction_control_ssim']:.2f}) "
      f"| {tempo_s:.3f} / {plain_s:.3f} ({tempo_s / plain_s:.2f}x) |")
PY
done
cat "$TABLE"
