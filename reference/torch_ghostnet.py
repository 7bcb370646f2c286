"""An independent PyTorch re-implementation of the official GhostNet architectures
(huawei-noah/Efficient-AI-Backbones: ghostnet_pytorch/ghostnet.py, GhostNetV2's and
GhostNetV3's, which timm ships as ghostnet*), written for the tests from the papers and the
releases' stage table and module names. Its modules
carry the release's names, so its state_dict has the official keys. It shares no code with
ghostnet_tf: it is the reference the converted Keras model is checked against."""
import math

import torch
from torch import nn
from torch.nn import functional as F

# (dw kernel, expansion, output channels, SE ratio, stride), grouped as the release's blocks.
STAGES = [
    [(3, 16, 16, 0, 1)],
    [(3, 48, 24, 0, 2)],
    [(3, 72, 24, 0, 1)],
    [(5, 72, 40, 0.25, 2)],
    [(5, 120, 40, 0.25, 1)],
    [(3, 240, 80, 0, 2)],
    [(3, 200, 80, 0, 1), (3, 184, 80, 0, 1), (3, 184, 80, 0, 1), (3, 480, 112, 0.25, 1),
     (3, 672, 112, 0.25, 1)],
    [(5, 672, 160, 0.25, 2)],
    [(5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1), (5, 960, 160, 0, 1), (5, 960, 160, 0.25, 1)],
]


def divisible(value, divisor=4):
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def conv_bn(in_channels, out_channels, kernel, stride=1, groups=1, relu=True):
    layers = [nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups,
                        bias=False), nn.BatchNorm2d(out_channels)]
    return nn.Sequential(*layers, nn.ReLU() if relu else nn.Identity())


class ConvBN(nn.Module):
    """One branch of GhostNetV3's re-parameterizable convolutions (`.conv`, `.bn`)."""

    def __init__(self, in_channels, out_channels, kernel, stride=1, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return self.bn(self.conv(x))


BRANCHES = 3  # GhostNetV3's num_conv_branches


class Ghost(nn.Module):
    def __init__(self, in_channels, out_channels, relu=True, attention=False, reparam=False):
        super().__init__()
        self.out_channels = out_channels
        intrinsic = math.ceil(out_channels / 2)
        self.reparam, self.relu = reparam, relu
        if reparam:  # GhostNetV3: sums of branches, then the activation
            self.primary_rpr_conv = nn.ModuleList(
                ConvBN(in_channels, intrinsic, 1) for _ in range(BRANCHES))
            self.cheap_rpr_conv = nn.ModuleList(
                ConvBN(intrinsic, intrinsic, 3, groups=intrinsic) for _ in range(BRANCHES))
            self.cheap_rpr_scale = ConvBN(intrinsic, intrinsic, 1, groups=intrinsic)
            self.cheap_rpr_skip = nn.BatchNorm2d(intrinsic)
        else:
            self.primary_conv = conv_bn(in_channels, intrinsic, 1, relu=relu)
            self.cheap_operation = conv_bn(intrinsic, intrinsic, 3, groups=intrinsic, relu=relu)
        # GhostNetV2's DFC attention (the paper's figure and the release's GhostModuleV2):
        # from the input, pooled 2x2, a 1x1 conv to all outputs, horizontal 1x5 and vertical
        # 5x1 depthwise convs, each with BN, a sigmoid, nearest upsampling to the output.
        self.short_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
            nn.Conv2d(out_channels, out_channels, (1, 5), padding=(0, 2), groups=out_channels,
                      bias=False), nn.BatchNorm2d(out_channels),
            nn.Conv2d(out_channels, out_channels, (5, 1), padding=(2, 0), groups=out_channels,
                      bias=False), nn.BatchNorm2d(out_channels)) if attention else None

    def _primary_and_cheap(self, x):
        if not self.reparam:
            intrinsic = self.primary_conv(x)
            return intrinsic, self.cheap_operation(intrinsic)
        act = F.relu if self.relu else (lambda y: y)
        intrinsic = act(sum(branch(x) for branch in self.primary_rpr_conv))
        cheap = sum(branch(intrinsic) for branch in self.cheap_rpr_conv)
        cheap = cheap + self.cheap_rpr_scale(intrinsic) + self.cheap_rpr_skip(intrinsic)
        return intrinsic, act(cheap)

    def forward(self, x):
        both = torch.cat(self._primary_and_cheap(x), dim=1)
        out = both[:, :self.out_channels]
        if self.short_conv is None:
            return out
        gate = torch.sigmoid(self.short_conv(F.avg_pool2d(x, kernel_size=2, stride=2)))
        return out * F.interpolate(gate, size=out.shape[-2:], mode="nearest")


class SE(nn.Module):
    def __init__(self, channels, ratio):
        super().__init__()
        reduced = divisible(channels * ratio)
        self.conv_reduce = nn.Conv2d(channels, reduced, 1)
        self.conv_expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x):
        gate = self.conv_expand(F.relu(self.conv_reduce(x.mean((2, 3), keepdim=True))))
        return x * F.relu6(gate + 3) / 6


class Bottleneck(nn.Module):
    def __init__(self, in_channels, mid, out, kernel, stride, se_ratio, attention=False,
                 reparam=False):
        super().__init__()
        self.ghost1 = Ghost(in_channels, mid, attention=attention, reparam=reparam)
        self.reparam = reparam
        if stride > 1 and reparam:
            self.dw_rpr_conv = nn.ModuleList(
                ConvBN(mid, mid, kernel, stride, groups=mid) for _ in range(BRANCHES))
            self.dw_rpr_scale = ConvBN(mid, mid, 1, stride, groups=mid)
        elif stride > 1:
            self.conv_dw = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
            self.bn_dw = nn.BatchNorm2d(mid)
        self.stride = stride
        self.se = SE(mid, se_ratio) if se_ratio else None
        self.ghost2 = Ghost(mid, out, relu=False, reparam=reparam)
        if in_channels == out and stride == 1:
            self.shortcut = nn.Sequential()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, in_channels, kernel, stride, kernel // 2,
                          groups=in_channels, bias=False),
                nn.BatchNorm2d(in_channels),
                nn.Conv2d(in_channels, out, 1, bias=False),
                nn.BatchNorm2d(out))

    def forward(self, x):
        y = self.ghost1(x)
        if self.stride > 1 and self.reparam:
            y = sum(branch(y) for branch in self.dw_rpr_conv) + self.dw_rpr_scale(y)
        elif self.stride > 1:
            y = self.bn_dw(self.conv_dw(y))
        if self.se is not None:
            y = self.se(y)
        return self.ghost2(y) + self.shortcut(x)


class LastStage(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        return F.relu(self.bn1(self.conv(x)))


class TorchGhostNet(nn.Module):
    """GhostNet (version 1), GhostNetV2 (version 2: DFC attention in the first Ghost module
    of every bottleneck after the first two) or GhostNetV3 (version 3: V2 whose Ghost modules
    and strided depthwise convolutions are sums of conv + BN branches, in train form)."""

    def __init__(self, width=1.0, classes=1000, version=1):
        super().__init__()
        channels = divisible(16 * width)
        self.conv_stem = nn.Conv2d(3, channels, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        stages, layer_id = [], 0
        for stage in STAGES:
            blocks = []
            for kernel, expansion, out, se_ratio, stride in stage:
                out = divisible(out * width)
                blocks.append(Bottleneck(channels, divisible(expansion * width), out, kernel,
                                         stride, se_ratio, attention=version >= 2 and layer_id > 1,
                                         reparam=version == 3))
                channels, layer_id = out, layer_id + 1
            stages.append(nn.Sequential(*blocks))
        last = divisible(STAGES[-1][-1][1] * width)
        stages.append(nn.Sequential(LastStage(channels, last)))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = nn.Conv2d(last, 1280, 1, bias=True)
        self.classifier = nn.Linear(1280, classes)

    def forward(self, x):
        x = self.blocks(F.relu(self.bn1(self.conv_stem(x))))
        x = F.relu(self.conv_head(x.mean((2, 3), keepdim=True)))
        return self.classifier(x.flatten(1))


def random_ghostnet(width, classes=1000, seed=0, version=1):
    """A TorchGhostNet in eval mode with random weights and random BN statistics (so that a
    wrong BN mapping cannot hide behind the defaults)."""
    torch.manual_seed(seed)
    model = TorchGhostNet(width, classes, version)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
        # PyTorch's default initialization gives logits of about 0.2; spread them over a few
        # units, so that a 1e-4 tolerance is a tight relative one.
        model.classifier.weight.mul_(25.0)
    return model.eval()


def calibrated_ghostnet(width, classes=1000, seed=0, version=3, size=224):
    """`random_ghostnet` whose BN statistics are those of one batch of random images (one
    pass in train mode, cumulative averages): GhostNetV3's sums of five branches stay O(1),
    which random statistics blow up."""
    model = random_ghostnet(width, classes, seed, version).train()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None
            module.reset_running_stats()
    with torch.no_grad():
        model(torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(seed)))
    return model.eval()
