#!/usr/bin/env python3
"""Median training-step time (forward, backward, SGD step) of a model in PyTorch CPU, on one fixed
random batch, as `tempo bench` measures it. Prints one JSON line (same keys as `tempo bench --json`).
Run with Debian's /usr/bin/python3 (python3-torch)."""
import argparse
import json
import resource
import statistics
import time

import torch

from torch_models import make_model


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="resnet18")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--tf32", action="store_true")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.manual_seed(0)
    dev = torch.device(a.device)
    model = make_model(a.model, a.channels, a.image_size).to(dev).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch_size, a.channels, a.image_size, a.image_size, device=dev)
    y = torch.randint(0, 10, (a.batch_size,), device=dev)
    loss_fn = torch.nn.CrossEntropyLoss()
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    times = []
    for s in range(a.warmup + a.steps):
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        sync()
        if s >= a.warmup:
            times.append(time.perf_counter() - t0)
    print(json.dumps({
        "model": a.model, "framework": "pytorch-" + a.device, "torch": torch.__version__,
        "threads": torch.get_num_threads(), "batch_size": a.batch_size,
        "median_step_seconds": statistics.median(times), "step_seconds": times,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "parameters": sum(p.numel() for p in model.parameters()),
    }))


if __name__ == "__main__":
    main()
