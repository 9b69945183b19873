#!/usr/bin/env python3
"""The PyTorch peer of `cae train --device cuda` on the same GPU (bench/gpu_check.sh): the seed
model of bench/torch_seed.py trained with the seed recipe (batch 200, Adam 1e-3, noise 0.5
clipped, BCE on logits), channels-last with cudnn.benchmark, in one of two modes:

  eager  the usual loop, the training set on the GPU, the loss summed on the GPU (no sync a step)
  graph  noise, forward, backward and Adam (capturable) captured once in a CUDA graph, replayed

Prints one JSON line: the last epoch's training images/s (the first warms cuDNN's autotuner and
the graph up) and mean loss.

  python3 bench/torch_gpu.py --mode eager|graph [--tf32 0|1] [--epochs 2] --data DIR
"""
import argparse, gzip, json, os, struct, sys, time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_seed import Seed  # noqa: E402  (the same model as the CPU peer)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(data_dir, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(data_dir, candidate)
        if os.path.exists(path):
            return path
    raise SystemExit(f"torch_gpu.py: no {name}[.gz] in {data_dir}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["eager", "graph"], default="eager")
    ap.add_argument("--tf32", type=int, default=0, help="1: let cuDNN use TF32 (PyTorch's default)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", required=True)
    ap.add_argument("--device", default="cuda", help="cpu: a smoke test of the eager loop")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N images")
    a = ap.parse_args()

    dev = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = bool(a.tf32)
    torch.backends.cuda.matmul.allow_tf32 = bool(a.tf32)
    torch.manual_seed(a.seed)
    images = read_idx(find(a.data, "train-images-idx3-ubyte"))
    if a.limit:
        images = images[:a.limit]
    train = torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1).to(dev)
    train = train.contiguous(memory_format=torch.channels_last)
    n, b = train.shape[0], a.batch
    steps = n // b
    model = Seed().to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                           capturable=a.mode == "graph")

    def step(clean):
        noisy = (clean + 0.5 * torch.randn_like(clean)).clamp(0, 1)
        loss = F.binary_cross_entropy_with_logits(model(noisy), clean)
        loss.backward()
        opt.step()
        return loss.detach()

    static_clean = torch.zeros((b, 1) + tuple(train.shape[2:]), device=dev)
    static_clean = static_clean.contiguous(memory_format=torch.channels_last)
    if a.mode == "graph":
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up outside the graph, as PyTorch's docs ask
            for _ in range(3):
                opt.zero_grad(set_to_none=True)
                step(static_clean)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            static_loss = step(static_clean)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    result = {}
    for epoch in range(1, a.epochs + 1):
        perm = torch.randperm(n, device=dev)
        total = torch.zeros((), device=dev)
        sync()
        t0 = time.perf_counter()
        for s in range(steps):
            batch = train[perm[s * b:(s + 1) * b]]
            if a.mode == "graph":
                static_clean.copy_(batch)
                graph.replay()
                total += static_loss
            else:
                opt.zero_grad(set_to_none=True)
                total += step(batch)
        sync()
        seconds = time.perf_counter() - t0
        result = {"variant": f"torch-{a.mode}-tf32={a.tf32}", "epoch": epoch,
                  "images_per_second": steps * b / seconds, "ms_per_step": 1e3 * seconds / steps,
                  "train_loss": total.item() / steps, "torch": torch.__version__,
                  "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
