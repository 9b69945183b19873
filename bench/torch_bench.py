#!/usr/bin/python3
"""PyTorch's side of bench/run.py: the seed model of DESIGN.md §1 (the Seed module of
bench/torch_seed.py; the first argument names another of its MODELS, e.g. unet) in channels-last, PyTorch's fastest layout on the CPU. Reads one command per
line on stdin, answers one JSON line, the same protocol as cae_bench:

  train B T WARMUP STEPS   batch assembly from bytes, noise, forward, loss, backward, Adam
  infer B T WARMUP STEPS   forward passes of one batch under no_grad
  isa                      the CPU capability ATen's kernels dispatch to (ATEN_CPU_CAPABILITY caps it)
"""
import json, os, sys, time

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no bench/__pycache__ in the work tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_seed import MODELS  # noqa: E402

# The model: the seed, or the preset named as the first argument (torch_seed.MODELS), on images
# of H W C (the next three arguments; default 28 28 1, as cae_bench).
Model = MODELS[sys.argv[1] if len(sys.argv) > 1 else "seed"]
H, W, C = map(int, sys.argv[2:5]) if len(sys.argv) > 4 else (28, 28, 1)


def synthetic_images(n):
    """MNIST-like bytes, about 80% zeros: speed does not depend on them."""
    rng = np.random.default_rng(12345)
    raw = rng.integers(0, 256, size=(n, C, H, W), dtype=np.uint8)
    raw[rng.random(raw.shape) < 0.8] = 0
    return torch.from_numpy(raw)


def train_rate(batch, warmup, steps):
    torch.manual_seed(0)
    train = synthetic_images((warmup + steps) * batch)
    model = Model(C).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    perm = torch.randperm(train.shape[0])
    model.train()
    t0 = None
    for b in range(warmup + steps):
        if b == warmup:
            t0 = time.perf_counter()
        clean = (train[perm[b * batch:(b + 1) * batch]].float() / 255).contiguous(
            memory_format=torch.channels_last)
        noisy = (clean + 0.5 * torch.randn_like(clean)).clamp(0, 1)
        loss = F.binary_cross_entropy_with_logits(model(noisy), clean)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
    return steps * batch / (time.perf_counter() - t0)


_models = {}


def infer_rate(batch, warmup, steps):
    if "m" not in _models:
        torch.manual_seed(0)
        _models["m"] = Model(C).to(memory_format=torch.channels_last).eval()
    model = _models["m"]
    x = torch.full((batch, C, H, W), 0.25).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        for _ in range(warmup):
            model(x)
        t0 = time.perf_counter()
        for _ in range(steps):
            model(x)
        return steps * batch / (time.perf_counter() - t0)


def aten_capability():
    """ATen's dispatch level, as torch.__config__.show() reports it (1.13 has no function for it)."""
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            return line.split(":", 1)[1].strip()
    return "?"


def main():
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        if words[0] == "isa":
            print(json.dumps({"aten": aten_capability()}), flush=True)
            continue
        cmd, batch, threads, a, b = words[0], *map(int, words[1:5])
        try:
            torch.set_num_threads(threads)
            rate = train_rate(batch, a, b) if cmd == "train" else infer_rate(batch, a, b)
            print(json.dumps({"images_per_second": rate}), flush=True)
        except Exception as e:  # the harness reports it and goes on
            print(json.dumps({"error": str(e)}), flush=True)


if __name__ == "__main__":
    main()
