#!/usr/bin/env bash
# Plain-mode (pure-TEE baseline) training-step time against PyTorch CPU, side by side in one run:
# the two alternate, ROUNDS times each, same batch, same threads; medians and their ratio.
# Usage: bench/plain_vs_torch.sh [BUILD_DIR] [OUT_JSON]     env: ROUNDS (3), THREADS (nproc),
#        MODELS ("resnet18:32 vit-tiny:32"), STEPS (8)
set -euo pipefail
build=${1:-build}
out=${2:-bench/results/plain_vs_torch.json}
rounds=${ROUNDS:-3}
threads=${THREADS:-$(nproc)}
steps=${STEPS:-8}
models=${MODELS:-"resnet18:32 vit-tiny:32"}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$(dirname "$out")"
tmp=$(mktemp)
for spec in $models; do
  model=${spec%%:*}
  batch=${spec##*:}
  for r in $(seq "$rounds"); do
    "$build/tempo" bench --model "$model" --batch-size "$batch" --steps "$steps" --threads "$threads" --json \
      | tail -n 1 | sed "s/^{/{\"who\":\"tempo\",\"round\":$r,/" >>"$tmp"
    /usr/bin/python3 "$here/torch_step.py" --model "$model" --batch-size "$batch" --steps "$steps" \
      --threads "$threads" | tail -n 1 | sed "s/^{/{\"who\":\"torch\",\"round\":$r,/" >>"$tmp"
  done
done
/usr/bin/python3 - "$tmp" "$out" "$threads" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
res = {"threads": int(sys.argv[3]), "cpu": open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].split(":", 1)[1].strip(), "models": {}}
for m in sorted({r["model"] for r in rows}):
    t = [r["median_step_seconds"] for r in rows if r["model"] == m and r["who"] == "tempo"]
    p = [r["median_step_seconds"] for r in rows if r["model"] == m and r["who"] == "torch"]
    tr = max(r["peak_rss_bytes"] for r in rows if r["model"] == m and r["who"] == "tempo")
    pr = max(r["peak_rss_bytes"] for r in rows if r["model"] == m and r["who"] == "torch")
    res["models"][m] = {"tempo_median_s": statistics.median(t), "torch_median_s": statistics.median(p),
                        "ratio_tempo_over_torch": statistics.median(t) / statistics.median(p),
                        "tempo_rounds": t, "torch_rounds": p,
                        "tempo_peak_rss_mib": tr / 2**20, "torch_peak_rss_mib": pr / 2**20}
    print(f"{m:10s} tempo {statistics.median(t):.3f} s  torch {statistics.median(p):.3f} s  "
          f"ratio {statistics.median(t)/statistics.median(p):.2f}x  "
          f"peak RSS tempo {tr/2**20:.0f} MiB torch {pr/2**20:.0f} MiB")
json.dump(res, open(sys.argv[2], "w"), indent=1)
PY
rm -f "$tmp"
