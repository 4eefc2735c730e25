#!/usr/bin/env bash
# Training-step time with the embedded worker against 1 and 2 remote `tempo worker` processes on
# this machine (loopback gRPC), side by side: the configurations alternate within each round, so
# load drift hits them alike. Per configuration: the median over rounds of each run's median step,
# its ratio over embedded, and the master's per-step breakdown (blind / wait / unblind seconds).
# Target (issue #4): remote within 1.2x of embedded.
# Usage: bench/remote_vs_embedded.sh [BUILD_DIR] [OUT_JSON]
#   env: ROUNDS (3), MODEL (resnet18), BATCH (32), STEPS (4), WARMUP (1), THREADS (nproc: the
#        master's), WORKER_THREADS (THREADS: the embedded worker's and the single remote worker's;
#        the two remote workers get half each), CHUNKS (1: --pipeline-chunks of the remote runs),
#        TEMPO (BUILD_DIR/tempo), PYTHON (/usr/bin/python3)
#   On a machine with cores to spare (bench/gpu/run_headline.sh, REMOTE=1), THREADS and
#   WORKER_THREADS at half the cores each keep master and workers off each other's cores.
set -euo pipefail
build=${1:-build}
out=${2:-bench/results/remote_vs_embedded.json}
rounds=${ROUNDS:-3}
model=${MODEL:-resnet18}
batch=${BATCH:-32}
steps=${STEPS:-4}
warmup=${WARMUP:-1}
threads=${THREADS:-$(nproc)}
worker_threads=${WORKER_THREADS:-$threads}
chunks=${CHUNKS:-1}
tempo=${TEMPO:-$build/tempo}
half=$(( worker_threads > 1 ? worker_threads / 2 : 1 ))
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

# Not called in $(...): a subshell would keep the worker's pid from `pids`, and the workers
# would outlive the script.
start_worker() {  # THREADS VAR: starts a worker and sets VAR to its HOST:PORT
  local log="$tmp/worker$RANDOM.log"
  "$tempo" worker --listen 127.0.0.1:0 --threads "$1" >"$log" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do
    if grep -q "listening on" "$log"; then
      printf -v "$2" '%s' "$(sed -n 's/.*listening on //p' "$log" | head -n 1)"
      return
    fi
    sleep 0.1
  done
  echo "tempo worker did not start" >&2
  exit 1
}
start_worker "$worker_threads" one
start_worker "$half" two_a
start_worker "$half" two_b
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

configs=("embedded:--worker-threads $worker_threads"
         "remote-1:--worker $one --pipeline-chunks $chunks"
         "remote-2:--worker $two_a --worker $two_b --pipeline-chunks $chunks")
for r in $(seq "$rounds"); do
  for c in "${configs[@]}"; do
    name=${c%%:*}
    # shellcheck disable=SC2086  # the flags are words
    "$tempo" bench --mode tempo --model "$model" --batch-size "$batch" --steps "$steps" \
      --warmup "$warmup" --threads "$threads" ${c#*:} --json 2>>"$tmp/err" | tail -n 1 |
      sed "s/^{/{\"config\":\"$name\",\"round\":$r,/" >>"$tmp/rows"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

"${PYTHON:-/usr/bin/python3}" - "$tmp/rows" "$out" "$load_before" "$load_after" "$((steps + warmup))" \
  "$(nproc)" "$threads" "$worker_threads" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
per_run_steps = int(sys.argv[5])
res = {"loadavg_before": sys.argv[3], "loadavg_after": sys.argv[4], "target_ratio": 1.2,
       "nproc": sys.argv[6], "master_threads": sys.argv[7], "worker_threads": sys.argv[8],
       "configs": {}}
base = None
print(f"{'config':10s} {'median s':>9s} {'x embedded':>10s} {'blind s':>8s} {'wait s':>7s} "
      f"{'unblind s':>9s}  rounds")
for name in dict.fromkeys(r["config"] for r in rows):
    rs = [r for r in rows if r["config"] == name]
    med = statistics.median(r["median_step_seconds"] for r in rs)
    phase = {k: statistics.median(r["traffic"]["seconds"][k] / per_run_steps for r in rs)
             for k in ("blind", "wait", "unblind")}
    base = base or med
    res["configs"][name] = {"median_step_seconds": med, "ratio": med / base,
                            "per_step_seconds": phase,
                            "rounds": [r["median_step_seconds"] for r in rs],
                            "worker": rs[0].get("worker")}
    print(f"{name:10s} {med:9.4f} {med / base:10.2f} {phase['blind']:8.4f} {phase['wait']:7.4f} "
          f"{phase['unblind']:9.4f}  " + " ".join(f"{r['median_step_seconds']:.4f}" for r in rs))
print(f"loadavg before: {sys.argv[3]}  after: {sys.argv[4]}")
json.dump(res, open(sys.argv[2], "w"), indent=1)
print(f"wrote {sys.argv[2]}")
PY
