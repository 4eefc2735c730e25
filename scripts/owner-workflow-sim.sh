#!/bin/bash
# The model owner's workflow, on the sim platform (no TEE: for development and demonstration).
#   1. create a data key           tempo seal --gen-key
#   2. seal Fashion-MNIST          tempo seal (both splits, every sample of the real files)
#   3. train on the sealed file    tempo train --data FILE.tds --key-file KEY --mode tempo
#      (decrypted in the master's memory only; checkpoints sealed, versioned)
#   4. export the model            tempo export (the owner's plaintext copy)
#   5. evaluate it                 tempo eval
# Usage: scripts/owner-workflow-sim.sh [TEMPO_BINARY] [WORK_DIR]
set -euo pipefail
tempo=${1:-build/tempo}
work=${2:-$(mktemp -d /tmp/tempo-owner.XXXXXX)}
data=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
mkdir -p "$work"
echo "== work dir: $work"

echo "== 1. data key"
rm -f "$work/data.key"
"$tempo" seal --gen-key "$work/data.key"

echo "== 2. seal Fashion-MNIST ($data)"
"$tempo" seal --dataset fashion-mnist --in "$data" --out "$work/fashion-mnist.tds" \
  --key-file "$work/data.key"
ls -l "$work/fashion-mnist.tds"

echo "== 3. train on the sealed file (--mode tempo, a few steps)"
"$tempo" train --data "$work/fashion-mnist.tds" --key-file "$work/data.key" --mode tempo \
  --model cnn --batch-size 64 --limit-train 1280 --limit-test 1000 --epochs 1 \
  --checkpoint-dir "$work/ckpt" --log-every 5
ls -l "$work/ckpt"
head -c 8 "$work/ckpt/last.ckpt"; echo "   <- the checkpoint on disk is sealed"

echo "== 4. export the model (plaintext, for the owner)"
"$tempo" export --checkpoint "$work/ckpt/last.ckpt" --key-file "$work/data.key" \
  --out "$work/model.ckpt"

echo "== 5. evaluate the exported model"
"$tempo" eval --checkpoint "$work/model.ckpt" --data-dir "$data" --limit-test 1000

echo "== 6. a rolled-back checkpoint is refused"
cp "$work/ckpt/last.ckpt" "$work/v1.ckpt"
"$tempo" train --data "$work/fashion-mnist.tds" --key-file "$work/data.key" --mode tempo \
  --model cnn --batch-size 64 --limit-train 1280 --limit-test 1000 --epochs 2 \
  --checkpoint-dir "$work/ckpt" --resume --log-every 100 > /dev/null
cp "$work/v1.ckpt" "$work/ckpt/last.ckpt"
if "$tempo" export --checkpoint "$work/ckpt/last.ckpt" --key-file "$work/data.key" \
  --out "$work/rolled-back.ckpt"; then
  echo "ERROR: rollback not detected" >&2
  exit 1
fi
echo "== done"
