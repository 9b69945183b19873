#!/usr/bin/python3
"""The peer: the seed model of DESIGN.md §1 (or cae's unet preset, --preset unet, or that with batch normalisation, --preset unet-bn) in PyTorch (Debian python3-torch), trained with the
seed's recipe on the same MNIST files, evaluated the way cae evaluates (test noise drawn once,
PSNR = mean over images of 10 log10(1 / MSE_image)). Prints one JSON line per epoch.

  /usr/bin/python3 bench/torch_seed.py --epochs 5 [--data ~/.local/share/cae/mnist] [--threads 2]
"""
import argparse, json, math, os, struct, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


class Seed(nn.Module):
    def __init__(self, c=1):
        super().__init__()
        self.e1, self.e2, self.e3 = nn.Conv2d(c, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1), nn.Conv2d(32, 16, 3, padding=1)
        self.d1, self.d2, self.d3 = nn.Conv2d(16, 16, 3, padding=1), nn.Conv2d(16, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1)
        self.out = nn.Conv2d(32, c, 3, padding=1)
        for m in self.modules():  # tf.layers defaults: Glorot-uniform kernels, zero biases
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    @staticmethod
    def pool(x):  # TF 'same' 2x2/2: pad the odd cell after with -inf
        h, w = x.shape[-2:]
        return F.max_pool2d(F.pad(x, (0, w % 2, 0, h % 2), value=-math.inf), 2)

    def forward(self, x):
        h, w = x.shape[-2:]
        s1 = (h, w)
        x = self.pool(F.relu(self.e1(x)))
        s2 = tuple(x.shape[-2:])
        x = self.pool(F.relu(self.e2(x)))
        s3 = tuple(x.shape[-2:])
        x = self.pool(F.relu(self.e3(x)))
        x = F.relu(self.d1(F.interpolate(x, size=s3, mode="nearest")))
        x = F.relu(self.d2(F.interpolate(x, size=s2, mode="nearest")))
        x = F.relu(self.d3(F.interpolate(x, size=s1, mode="nearest")))
        return self.out(x)


class Unet(Seed):
    """cae's unet preset: the seed with each encoder output concatenated into the decoder after
    the resize that brings it back to its size (51,425 parameters)."""

    def __init__(self, c=1):
        super().__init__(c)
        self.d1, self.d2, self.d3 = nn.Conv2d(32, 16, 3, padding=1), nn.Conv2d(48, 32, 3, padding=1), nn.Conv2d(64, 32, 3, padding=1)
        for m in (self.d1, self.d2, self.d3):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x):
        h, w = x.shape[-2:]
        e1 = F.relu(self.e1(x))
        x = self.pool(e1)
        e2 = F.relu(self.e2(x))
        x = self.pool(e2)
        e3 = F.relu(self.e3(x))
        x = self.pool(e3)
        x = F.relu(self.d1(torch.cat([F.interpolate(x, size=e3.shape[-2:], mode="nearest"), e3], 1)))
        x = F.relu(self.d2(torch.cat([F.interpolate(x, size=e2.shape[-2:], mode="nearest"), e2], 1)))
        x = F.relu(self.d3(torch.cat([F.interpolate(x, size=(h, w), mode="nearest"), e1], 1)))
        return self.out(x)


class UnetBN(Unet):
    """The unet with batch normalisation after every hidden conv, before its ReLU (the convs then
    lose their biases, which BN's shift replaces): the measurement behind cae's choice not to
    have batch normalisation (docs/mnist.md, "Batch normalisation")."""

    def __init__(self, c=1):
        super().__init__(c)
        self.hidden = [self.e1, self.e2, self.e3, self.d1, self.d2, self.d3]
        for conv in self.hidden:
            conv.bias = None
        self.norms = nn.ModuleList(nn.BatchNorm2d(conv.out_channels) for conv in self.hidden)

    def block(self, i, x):
        return F.relu(self.norms[i](self.hidden[i](x)))

    def forward(self, x):
        h, w = x.shape[-2:]
        e1 = self.block(0, x)
        e2 = self.block(1, self.pool(e1))
        e3 = self.block(2, self.pool(e2))
        x = self.pool(e3)
        x = self.block(3, torch.cat([F.interpolate(x, size=e3.shape[-2:], mode="nearest"), e3], 1))
        x = self.block(4, torch.cat([F.interpolate(x, size=e2.shape[-2:], mode="nearest"), e2], 1))
        x = self.block(5, torch.cat([F.interpolate(x, size=(h, w), mode="nearest"), e1], 1))
        return self.out(x)


MODELS = {"seed": Seed, "unet": Unet, "unet-bn": UnetBN}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=sorted(MODELS), default="seed")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=0, help="stop each epoch after this many batches (0: all)")
    ap.add_argument("--data", default=os.path.join(os.environ.get("CAE_DATA", os.path.expanduser("~/.local/share/cae")), "mnist"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    train = torch.from_numpy(read_idx(os.path.join(a.data, "train-images-idx3-ubyte")).astype(np.float32) / 255).unsqueeze(1)
    test = torch.from_numpy(read_idx(os.path.join(a.data, "t10k-images-idx3-ubyte")).astype(np.float32) / 255).unsqueeze(1)
    g = torch.Generator().manual_seed(1234)
    test_noisy = (test + 0.5 * torch.randn(test.shape, generator=g)).clamp(0, 1)
    model = MODELS[a.preset]().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    for epoch in range(1, a.epochs + 1):
        t0 = time.time()
        perm = torch.randperm(train.shape[0])
        losses = []
        model.train()
        for b in range(min(a.steps or train.shape[0], train.shape[0] // a.batch)):
            clean = train[perm[b * a.batch:(b + 1) * a.batch]].contiguous(memory_format=torch.channels_last)
            noisy = (clean + 0.5 * torch.randn_like(clean)).clamp(0, 1)
            loss = F.binary_cross_entropy_with_logits(model(noisy), clean)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        seconds = time.time() - t0
        model.eval()
        with torch.no_grad():
            bce, psnr_in, psnr_out = 0.0, 0.0, 0.0
            for i in range(0, test.shape[0], 500):
                x, z = test_noisy[i:i + 500].contiguous(memory_format=torch.channels_last), test[i:i + 500]
                logits = model(x)
                bce += F.binary_cross_entropy_with_logits(logits, z, reduction="sum").item()
                y = torch.sigmoid(logits)
                psnr_in += (10 * torch.log10(1 / ((x - z) ** 2).mean(dim=(1, 2, 3)))).sum().item()
                psnr_out += (10 * torch.log10(1 / ((y - z) ** 2).mean(dim=(1, 2, 3)))).sum().item()
        n = test.shape[0]
        print(json.dumps({"epoch": epoch, "train_loss": sum(losses) / len(losses), "test_bce": bce / (n * 784),
                          "psnr_noisy_db": psnr_in / n, "psnr_output_db": psnr_out / n,
                          "train_seconds": seconds, "images_per_second": len(losses) * a.batch / seconds}), flush=True)


if __name__ == "__main__":
    main()
