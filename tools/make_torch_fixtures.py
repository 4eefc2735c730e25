#!/usr/bin/python3
"""Writes the PyTorch reference fixtures that tests/torch_parity_test.cpp checks against.

Run with Debian's Python, which has torch 1.13 (CPU):

    /usr/bin/python3 tools/make_torch_fixtures.py            # writes tests/fixtures/*.bin
    /usr/bin/python3 tools/make_torch_fixtures.py --counts   # prints reference parameter counts

Two blocks are built with fixed seeds, their parameters drawn in float32, then run forward and
backward in float64 (so the reference carries no rounding error of its own) and stored as float32:

  * resnet_bottleneck.bin: torchvision's Bottleneck (v1.5: stride on the 3x3 conv), 16 -> 8 -> 32
    channels, stride 2, conv-BN projection shortcut, BatchNorm in training mode, input [4,16,8,8].
  * resnet_basic_block.bin: torchvision's BasicBlock, 8 -> 8 channels, stride 1, identity
    shortcut, BatchNorm in training mode, input [2,8,6,6].
  * vit_block.bin: timm's pre-norm ViT Block, dim 32, 4 heads, MLP ratio 4, LayerNorm eps 1e-6,
    fused qkv Linear with bias, exact GELU, input [2,16,32] of scale 0.03.

Fixture format (little-endian):
    8 bytes  magic "TEMPOFX1"
    u32      number of tensors
    per tensor:
      u32 name length, name (UTF-8), u32 rank, i64 dims[rank], f32 data[prod(dims)] (row-major)
Tensor names: "input", "dy" (the output gradient fed to backward), "output", "dx",
"param.<state_dict name>" (weights in PyTorch layout: Linear weight is [out, in]; ours is the
transpose), "grad.<name>" (dL/d parameter for L = sum(output * dy)), and for BatchNorm
"buffer.<name>.running_mean"/"running_var" after the one training-mode forward.
"""
import argparse
import math
import os
import struct
import sys

import torch
from torch import nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures")


# --- torchvision's ResNet pieces (torchvision is not installed; this mirrors its code) ---------
def conv3x3(i, o, stride=1):
    return nn.Conv2d(i, o, 3, stride=stride, padding=1, bias=False)


def conv1x1(i, o, stride=1):
    return nn.Conv2d(i, o, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * 4)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + idt)


class CifarResNet(nn.Module):
    """torchvision.models.resnet.ResNet with conv1 = 3x3 stride 1 and maxpool = Identity."""

    def __init__(self, block, layers, in_channels=3, num_classes=10):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        ds = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            ds = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                               nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self.inplanes, planes, stride, ds)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --- timm's ViT pieces --------------------------------------------------------------------------
class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, t, d))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, dim * mlp_ratio)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, in_channels, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(in_channels, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ViT(nn.Module):
    """Our ViT layout (mean pooling, no class token) in PyTorch, for parameter counts."""

    def __init__(self, in_channels, image_size, num_classes, dim, depth, heads, patch, mlp_ratio):
        super().__init__()
        self.patch_embed = PatchEmbed(in_channels, patch, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, (image_size // patch) ** 2, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.blocks(self.patch_embed(x) + self.pos_embed)
        return self.head(self.norm(x).mean(dim=1))


# --- fixture writing ----------------------------------------------------------------------------
def write_fixture(path, tensors):
    with open(path, "wb") as f:
        f.write(b"TEMPOFX1")
        f.write(struct.pack("<I", len(tensors)))
        for name, t in tensors:
            t = t.detach().to(torch.float32).contiguous().cpu()
            raw = name.encode("utf-8")
            f.write(struct.pack("<I", len(raw)))
            f.write(raw)
            f.write(struct.pack("<I", t.dim()))
            f.write(struct.pack("<%dq" % t.dim(), *t.shape))
            f.write(t.numpy().astype("<f4").tobytes())
    print("wrote %s (%d bytes)" % (os.path.relpath(path), os.path.getsize(path)))


def randomize_(module, gen):
    """Random float32 parameters (non-trivial BN/LN affine too), exactly representable later."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() >= 2:  # conv / linear weights: variance-preserving scale
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
            elif name.endswith("weight"):  # norm gains
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            else:  # biases
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))


def run_case(module, x, gen):
    """Forward/backward in float64; returns the named tensors of one fixture."""
    module = module.double().train()
    params_before = [("param." + n, p.detach().clone()) for n, p in module.named_parameters()]
    x64 = x.double().requires_grad_(True)
    y = module(x64)
    dy = torch.randn(y.shape, generator=gen).double()
    y.backward(dy)
    out = [("input", x), ("dy", dy), ("output", y), ("dx", x64.grad)]
    out += params_before
    out += [("grad." + n, p.grad) for n, p in module.named_parameters()]
    out += [("buffer." + n, b) for n, b in module.named_buffers() if "running" in n]
    return out


def make_fixtures():
    os.makedirs(FIXTURES, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)
    ds = nn.Sequential(conv1x1(16, 32, 2), nn.BatchNorm2d(32))
    block = Bottleneck(16, 8, stride=2, downsample=ds)
    randomize_(block, gen)
    x = torch.randn((4, 16, 8, 8), generator=gen)
    write_fixture(os.path.join(FIXTURES, "resnet_bottleneck.bin"), run_case(block, x, gen))

    gen = torch.Generator().manual_seed(4321)
    basic = BasicBlock(8, 8)  # identity shortcut
    randomize_(basic, gen)
    x = torch.randn((2, 8, 6, 6), generator=gen)
    write_fixture(os.path.join(FIXTURES, "resnet_basic_block.bin"), run_case(basic, x, gen))

    gen = torch.Generator().manual_seed(5678)
    vblock = Block(32, 4, 4)
    randomize_(vblock, gen)
    # Small-scale tokens: LayerNorm's eps (1e-6, timm) then changes the result by ~1e-3, so a
    # wrong eps (PyTorch's default 1e-5) fails the parity test.
    x = 0.03 * torch.randn((2, 16, 32), generator=gen)
    write_fixture(os.path.join(FIXTURES, "vit_block.bin"), run_case(vblock, x, gen))


def mlp(c, s, classes=10):
    return nn.Sequential(nn.Flatten(), nn.Linear(c * s * s, 256), nn.ReLU(), nn.Linear(256, 128),
                         nn.ReLU(), nn.Linear(128, classes))


def cnn(c, s, classes=10):
    f = s // 4
    return nn.Sequential(nn.Conv2d(c, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1, bias=False),
                         nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64 * f * f, 128), nn.ReLU(), nn.Linear(128, classes))


def count(m):
    return sum(p.numel() for p in m.parameters())


def print_counts():
    for c in (3, 1):
        print("in_channels=%d, 10 classes:" % c)
        print("  resnet18 (CIFAR)  %d" % count(CifarResNet(BasicBlock, [2, 2, 2, 2], c)))
        print("  resnet50 (CIFAR)  %d" % count(CifarResNet(Bottleneck, [3, 4, 6, 3], c)))
        for s in (28, 32):
            print("  mlp %dx%d          %d" % (s, s, count(mlp(c, s))))
            print("  cnn %dx%d          %d" % (s, s, count(cnn(c, s))))
            print("  vit-s4 %dx%d       %d" % (s, s, count(ViT(c, s, 10, 384, 12, 6, 4, 4))))
            print("  vit-tiny %dx%d     %d" % (s, s, count(ViT(c, s, 10, 64, 4, 4, 4, 4))))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--counts", action="store_true", help="print reference parameter counts")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.counts:
        print_counts()
    else:
        make_fixtures()
    sys.exit(0)
