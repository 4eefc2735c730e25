#!/usr/bin/python3
"""Bytes per training step of --mode tempo, by layer, against the protocol minimum.

Runs one training step (tempo bench --steps 1 --warmup 0: no eval forwards) in patch mode and in
channel mode with --traffic-report, and prints per offloaded layer the MB the master sent and
received, next to the minimum PROTOCOL.md sections 2-4 require, computed here independently from
the layer's geometry (CIFAR ResNet-18; other models get the engine's own min_bytes only):

  forward:  X' and W' sent, Y' received
  backward: dY' sent twice (one key shift for dX, one for dW), dX' and dW' received

Patch mode: X' is the im2col patch matrix [N*H'*W', C*k*k] and dX' its gradient (col2im runs in
the TEE); channel mode: X' and dX' are N*C*H*W. W' and dW' are O*C*k*k, Y' and each dY' N*O*H'*W'.
MB = 10^6 bytes, fp32.

Usage: bench/traffic_report.py [--build build] [--model resnet18] [--batch-size 32]
                               [--out bench/results/traffic_resnet18.json]
"""
import argparse
import json
import subprocess
import sys

MB = 1e6


def resnet18_convs(image=32):
    """(path, C, O, k, stride, pad, H_in) of every conv of the CIFAR ResNet-18 (models/resnet.cpp)."""
    convs = [("conv1", 3, 64, 3, 1, 1, image)]
    in_planes, size = 64, image
    for stage, planes in enumerate([64, 128, 256, 512]):
        for b in range(2):
            stride = 2 if stage > 0 and b == 0 else 1
            p = f"layer{stage + 1}.{b}"
            convs.append((f"{p}.conv1", in_planes, planes, 3, stride, 1, size))
            out = (size + 2 - 3) // stride + 1
            convs.append((f"{p}.conv2", planes, planes, 3, 1, 1, out))
            if stride != 1 or in_planes != planes:
                convs.append((f"{p}.downsample.0", in_planes, planes, 1, stride, 0, size))
            in_planes, size = planes, out
    return convs


def protocol_minimum(n, c, o, k, stride, pad, h, mode):
    """(sent, received) bytes of one training step of a conv layer, fp32."""
    ho = (h + 2 * pad - k) // stride + 1
    m = n * ho * ho
    w = o * c * k * k
    x = m * c * k * k if mode == "patch" else n * c * h * h
    y = m * o
    return 4 * (x + w + 2 * y), 4 * (y + x + w)


def run_bench(args, mode):
    cmd = [f"{args.build}/tempo", "bench", "--model", args.model, "--batch-size",
           str(args.batch_size), "--steps", "1", "--warmup", "0", "--threads", str(args.threads),
           "--mode", "tempo", "--conv-mode", mode, "--traffic-report", "--json"]
    print("$ " + " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--model", default="resnet18")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = args.out or f"bench/results/traffic_{args.model}.json"

    runs = {mode: run_bench(args, mode) for mode in ("patch", "channel")}
    geometry = {c[0]: c for c in resnet18_convs()} if args.model == "resnet18" else {}
    layers = runs["patch"]["traffic"]["layers"]
    rows = []
    for path in layers:  # the JSON map is ordered by path (layerN.B.convK)
        row = {"layer": path}
        for mode in ("patch", "channel"):
            t = runs[mode]["traffic"]["layers"].get(path, {})
            row[f"{mode}_sent_mb"] = t.get("bytes_sent", 0) / MB
            row[f"{mode}_received_mb"] = t.get("bytes_received", 0) / MB
            row[f"{mode}_engine_min_mb"] = t.get("min_bytes", 0) / MB
            row[f"{mode}_requests"] = t.get("requests", 0)
            if path in geometry:
                _, c, o, k, s, p, h = geometry[path]
                sent, recv = protocol_minimum(args.batch_size, c, o, k, s, p, h, mode)
                row[f"{mode}_min_mb"] = (sent + recv) / MB
                row["geometry"] = f"{c}->{o} k{k} s{s} {h}x{h}"
            else:
                row[f"{mode}_min_mb"] = row[f"{mode}_engine_min_mb"]
        rows.append(row)

    def total(key):
        return sum(r[key] for r in rows)

    print(f"\n{args.model}, batch {args.batch_size}: MB per training step (1 step, no eval), "
          f"{len(rows)} offloaded layers")
    hdr = (f"{'layer':22s} {'geometry':22s} {'patch sent':>10s} {'recv':>8s} {'min':>8s} "
           f"{'/min':>5s} {'chan sent':>9s} {'recv':>8s} {'min':>8s} {'/min':>5s} {'patch/chan':>10s}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows + [{"layer": "TOTAL", "geometry": "", **{k: total(k) for k in rows[0] if k not in ("layer", "geometry")}}]:
        ps, pr = r["patch_sent_mb"], r["patch_received_mb"]
        cs, cr = r["channel_sent_mb"], r["channel_received_mb"]
        print(f"{r['layer']:22s} {r.get('geometry', ''):22s} {ps:10.2f} {pr:8.2f} {r['patch_min_mb']:8.2f} "
              f"{(ps + pr) / r['patch_min_mb']:5.2f} {cs:9.2f} {cr:8.2f} {r['channel_min_mb']:8.2f} "
              f"{(cs + cr) / r['channel_min_mb']:5.2f} {(ps + pr) / (cs + cr):10.2f}")
    res = {"model": args.model, "batch_size": args.batch_size, "steps": 1, "unit": "MB (1e6 bytes)",
           "layers": rows,
           "total": {m: {"sent_mb": total(f"{m}_sent_mb"), "received_mb": total(f"{m}_received_mb"),
                         "min_mb": total(f"{m}_min_mb")} for m in ("patch", "channel")},
           "step_seconds": {m: runs[m]["median_step_seconds"] for m in runs}}
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
