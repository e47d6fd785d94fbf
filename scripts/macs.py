#!/usr/bin/env python3
"""Multiply-adds of conv and fc layers of torchvision models, counted with forward hooks on a
1x3x224x224 input: a conv gives (output elements) x (input channels / groups) x kh x kw, a
linear layer in x out. This is the convention of the paper's "FLOPs" and of torchvision's
published `_ops` (GFLOPS, to three decimals at most); the exact figures of
tests/zoo_variants.rs are what this prints.

    scripts/libtorch.sh python scripts/macs.py [NAME...]     (torch 2.9.0, torchvision 0.24.0)
"""

import sys

import torch
import torch.nn as nn
import torchvision


def macs(model):
    total = 0

    def conv(m, inp, out):
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear(m, inp, out):
        nonlocal total
        total += out.numel() // m.out_features * m.in_features * m.out_features

    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(conv)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(linear)
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    return total


def main():
    names = sys.argv[1:] or ["resnext50_32x4d", "wide_resnet50_2", "mobilenet_v2"]
    for name in names:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        n = macs(torchvision.models.get_model(name))
        print(f"{name}: {n} multiply-adds ({n / 1e9:.3f} G); torchvision publishes {weights.meta['_ops']} GFLOPS")


if __name__ == "__main__":
    main()
