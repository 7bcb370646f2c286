"""A PyTorch trainer of its own, for the reference row of train.py's results.

    python benchmarks/torch_reference_training.py --model resnet20 --epochs 5 --seed 0
    python benchmarks/torch_reference_training.py --model ghost_resnet20 --epochs 5 --seed 0

Trains the CIFAR ResNet (He et al. 2016, option-A shortcuts) or its Ghost version (every
convolution but the first a linear Ghost module, s=2, d=3, no BN of its own) on
Fashion-MNIST with configs/fashion_mnist_resnet56.yaml's recipe, written here without the
library: SGD momentum 0.9, weight decay 1e-4 on the convolution and linear weights only
(PyTorch's coupled decay), lr 0.1 at batch 128 with one epoch of linear warm-up then cosine
to 0 (per step), zero-pad 4 + random crop + horizontal flip, [0, 255] scaled to [-1, 1],
BN epsilon 1e-5 and momentum 0.1, He-normal convolution weights. Prints the test top-1 of
the final weights. Needs torch (the test extra installs the CPU build).
"""
import argparse
import gzip
import math
import os
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

DATA_DIR = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """An IDX file (gzip) as a numpy array."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(split, data_dir):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
    return torch.from_numpy(images.astype(np.float32))[:, None], torch.from_numpy(
        labels.astype(np.int64))


class GhostConv(nn.Module):
    """A linear Ghost module in place of a 3x3 convolution: a primary convolution to half
    the channels (same kernel and stride), a 3x3 depthwise convolution of it, concatenated."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.primary = nn.Conv2d(cin, math.ceil(cout / 2), 3, stride, 1, bias=False)
        self.cheap = nn.Conv2d(math.ceil(cout / 2), math.ceil(cout / 2), 3, 1, 1,
                               groups=math.ceil(cout / 2), bias=False)
        self.cout = cout

    def forward(self, x):
        y = self.primary(x)
        return torch.cat([y, self.cheap(y)], 1)[:, :self.cout]


def conv3x3(cin, cout, stride, ghost):
    return GhostConv(cin, cout, stride) if ghost else nn.Conv2d(cin, cout, 3, stride, 1,
                                                                bias=False)


class Block(nn.Module):
    def __init__(self, cin, cout, stride, ghost):
        super().__init__()
        self.conv1, self.bn1 = conv3x3(cin, cout, stride, ghost), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = conv3x3(cout, cout, 1, ghost), nn.BatchNorm2d(cout)
        self.stride, self.pad = stride, cout - cin

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x
        if self.stride > 1 or self.pad:  # option A: subsample, zero-pad the channels
            shortcut = F.pad(x[:, :, ::self.stride, ::self.stride],
                             (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + shortcut)


class CifarResNet(nn.Module):
    def __init__(self, depth, ghost, in_channels=1, classes=10):
        super().__init__()
        n = (depth - 2) // 6
        self.stem, self.bn = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)
        blocks, cin = [], 16
        for stage, cout in enumerate((16, 32, 64)):
            for index in range(n):
                blocks.append(Block(cin, cout, 2 if stage and not index else 1, ghost))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")

    def forward(self, x):
        x = (x / 255.0 - 0.5) / 0.5
        x = self.blocks(F.relu(self.bn(self.stem(x))))
        return self.fc(x.mean((2, 3)))


def pad_crop_flip(images, generator):
    n, _, h, w = images.shape
    padded = F.pad(images, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=generator)
    dx = torch.randint(0, 9, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    out[flip] = out[flip].flip(3)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("resnet20", "ghost_resnet20", "resnet56",
                                            "ghost_resnet56"), default="resnet20")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=DATA_DIR)
    parser.add_argument("--limit", type=int, help="train on the first N images (a smoke run)")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    images, labels = load("train", args.data_dir)
    test_images, test_labels = load("test", args.data_dir)
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    depth = int(args.model.rsplit("resnet", 1)[1])
    model = CifarResNet(depth, ghost=args.model.startswith("ghost"))
    decayed = [p for name, p in model.named_parameters() if name.endswith("weight")
               and p.dim() > 1]
    others = [p for name, p in model.named_parameters() if not (name.endswith("weight")
                                                                and p.dim() > 1)]
    optimizer = torch.optim.SGD([{"params": decayed, "weight_decay": 1e-4},
                                 {"params": others, "weight_decay": 0.0}], lr=0.1,
                                momentum=0.9)
    batch, steps_per_epoch = 128, len(images) // 128
    total, warmup = args.epochs * steps_per_epoch, steps_per_epoch

    def lr_at(step):  # linear warm-up from 0, then cosine to 0 (Keras' CosineDecay)
        if step < warmup:
            return 0.1 * step / warmup
        return 0.1 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))

    start, step = time.time(), 0
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        for index in range(steps_per_epoch):
            chosen = order[index * batch:(index + 1) * batch]
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            loss = F.cross_entropy(model(pad_crop_flip(images[chosen], generator)),
                                   labels[chosen])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss.item():.4f} "
              f"({time.time() - start:.0f} s)", flush=True)
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(test_images[i:i + 500]).argmax(1)
                           == test_labels[i:i + 500]).sum())
                      for i in range(0, len(test_images), 500))
    print(f"{args.model} seed {args.seed} epochs {args.epochs}: test top-1 "
          f"{correct / len(test_images):.4f}")


if __name__ == "__main__":
    main()
