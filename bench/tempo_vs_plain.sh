#!/usr/bin/env bash
# Tempo mode (embedded CPU worker) against plain mode (the pure-TEE baseline): training-step time,
# side by side in one run. For each model the three configurations alternate, ROUNDS times each:
#   plain | tempo (patch-mode convs, the default) | tempo --conv-mode channel
#   and, for vit* models, tempo --attention-in-tee (attention products computed in the TEE)
# Medians and ratios over plain go to a JSON file and a printed table; the load average is taken
# before and after (a shared machine: rerun when it moved a lot).
# Target (issue): tempo / plain <= 1.3.
# Usage: bench/tempo_vs_plain.sh [BUILD_DIR] [OUT_JSON]
# Columns: median step wall time (and its forward/backward parts), its ratio over plain, CPU
# seconds of the whole process (children's user+sys from /proc/$$/stat) and their ratio, traffic.
#   env: ROUNDS (3), THREADS (nproc), STEPS (8), WARMUP (2), MODELS ("resnet18:32 vit-tiny:64")
set -euo pipefail
build=${1:-build}
out=${2:-bench/results/tempo_vs_plain.json}
rounds=${ROUNDS:-3}
threads=${THREADS:-$(nproc)}
steps=${STEPS:-8}
warmup=${WARMUP:-2}
models=${MODELS:-"resnet18:32 vit-tiny:64"}
mkdir -p "$(dirname "$out")"
tmp=$(mktemp)
trap 'rm -f "$tmp" "$tmp.err"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
info=$("$build/tempo" info --json 2>/dev/null | tail -n 1 || echo '{}')

configs=("plain:--mode plain" "tempo-patch:--mode tempo" "tempo-channel:--mode tempo --conv-mode channel")
for spec in $models; do
  model=${spec%%:*}
  batch=${spec##*:}
  model_configs=("${configs[@]}")
  [[ $model == vit* ]] && model_configs+=("tempo-attn-tee:--mode tempo --attention-in-tee")
  for r in $(seq "$rounds"); do
    for c in "${model_configs[@]}"; do
      name=${c%%:*}
      # CPU seconds of the whole process (user + sys) besides the wall-clock step times: on a
      # shared machine they move less with the load than wall time does.
      start=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
      # shellcheck disable=SC2086  # the flags are words
      line=$("$build/tempo" bench --model "$model" --batch-size "$batch" --steps "$steps" \
        --warmup "$warmup" --threads "$threads" ${c#*:} --json 2>>"$tmp.err" | tail -n 1)
      end=$(awk '{print $14 + $15 + $16 + $17}' /proc/$$/stat)
      cpu=$(awk -v a="$start" -v b="$end" -v t="$(getconf CLK_TCK)" 'BEGIN {print (b - a) / t}')
      echo "$line" | sed "s/^{/{\"config\":\"$name\",\"round\":$r,\"process_cpu_s\":$cpu,/" >>"$tmp"
    done
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

/usr/bin/python3 - "$tmp" "$out" "$threads" "$load_before" "$load_after" "$info" "$warmup" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
try:
    info = json.loads(sys.argv[6])
except ValueError:
    info = {}
res = {"threads": int(sys.argv[3]), "loadavg_before": sys.argv[4], "loadavg_after": sys.argv[5],
       "machine": info, "target_ratio": 1.3, "models": {}}
configs = list(dict.fromkeys(r["config"] for r in rows))
print(f"{'model':10s} {'batch':>5s} {'config':14s} {'median s':>9s} {'fwd s':>7s} {'bwd s':>7s} "
      f"{'x plain':>7s} {'cpu s':>7s} {'x plain':>7s} {'MB/step':>8s}  rounds")
for m in dict.fromkeys(r["model"] for r in rows):
    entry = {}
    plain = statistics.median(r["median_step_seconds"] for r in rows
                              if r["model"] == m and r["config"] == "plain")
    for c in configs:
        rs = [r for r in rows if r["model"] == m and r["config"] == c]
        if not rs:
            continue
        med = statistics.median(r["median_step_seconds"] for r in rs)
        traffic = rs[0].get("traffic", {})
        # The bench process counts the traffic of its warmup and timed steps together.
        steps = rs[0]["steps"] + int(sys.argv[7])
        mb = (traffic.get("bytes_sent", 0) + traffic.get("bytes_received", 0)) / 1e6 / steps
        entry[c] = {"median_step_s": med,
                    "forward_s": statistics.median(r["forward_seconds"] for r in rs),
                    "backward_s": statistics.median(r["backward_seconds"] for r in rs),
                    "ratio_over_plain": med / plain,
                    "rounds_s": [r["median_step_seconds"] for r in rs],
                    "process_cpu_s": statistics.median(r["process_cpu_s"] for r in rs),
                    "peak_rss_mib": max(r["peak_rss_bytes"] for r in rs) / 2**20,
                    "offloaded_layers": rs[0].get("offloaded_layers", 0),
                    "traffic_mb_per_step": mb}
        print(f"{m:10s} {rs[0]['batch_size']:5d} {c:14s} {med:9.4f} {entry[c]['forward_s']:7.4f} "
              f"{entry[c]['backward_s']:7.4f} {med / plain:7.2f} "
              f"{entry[c]['process_cpu_s']:7.1f} {entry[c]['process_cpu_s'] / entry['plain']['process_cpu_s']:7.2f} "
              f"{'' if c == 'plain' else format(mb, '8.1f'):>8s}  "
              + " ".join(f"{x:.4f}" for x in entry[c]["rounds_s"]))
    entry["batch_size"] = next(r["batch_size"] for r in rows if r["model"] == m)
    res["models"][m] = entry
print(f"loadavg before: {sys.argv[4]}  after: {sys.argv[5]}  (threads {sys.argv[3]})")
print("cpu s: user+sys CPU seconds of the whole bench process (model build, warmup and timed steps)")
print("MB/step: bytes sent + received per training step (bench/traffic_report.py breaks it down by layer)")
json.dump(res, open(sys.argv[2], "w"), indent=1)
PY
echo "wrote $out"
