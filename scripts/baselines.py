#!/usr/bin/env python3
"""Independent parameter counts for the networks of architectures/table6.arch and
architectures/imagenet_baselines.arch: each written again here in torch.nn from its
publication (the same reading the .arch files' comments give), run once on a zero input to
check the output shape, and its trainable parameters counted by PyTorch. tests/zoo_variants.rs
holds archc's counts equal to these.

Needs torch:  python3 scripts/baselines.py
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class Maxout(nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        n, c = x.shape[:2]
        return x.view(n, c // self.k, self.k, *x.shape[2:]).amax(2)


def maxout_cifar():
    return nn.Sequential(
        nn.Dropout(0.2), nn.Conv2d(3, 192, 8, padding=4), Maxout(2), nn.MaxPool2d(4, 2),
        nn.Dropout(0.5), nn.Conv2d(96, 384, 8, padding=3), Maxout(2), nn.MaxPool2d(4, 2),
        nn.Dropout(0.5), nn.Conv2d(192, 384, 5, padding=3), Maxout(2), nn.MaxPool2d(2, 2),
        nn.Dropout(0.5), nn.Flatten(), nn.Linear(192 * 4 * 4, 2500), Maxout(5),
        nn.Dropout(0.5), nn.Linear(500, 10),
    )


def nin_body():
    def conv(i, o, k):
        return [nn.Conv2d(i, o, k, padding=k // 2), nn.ReLU()]

    return nn.ModuleList([
        nn.Sequential(*conv(3, 192, 5), *conv(192, 160, 1), *conv(160, 96, 1),
                      nn.MaxPool2d(3, 2, ceil_mode=True)),
        nn.Sequential(nn.Dropout(0.5), *conv(96, 192, 5), *conv(192, 192, 1), *conv(192, 192, 1),
                      nn.AvgPool2d(3, 2, ceil_mode=True)),
        nn.Sequential(nn.Dropout(0.5), *conv(192, 192, 3), *conv(192, 192, 1), *conv(192, 10, 1),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten()),
    ])


class Nin(nn.Module):
    def __init__(self, companions=False):
        super().__init__()
        self.body = nin_body()
        self.companions = nn.ModuleList(
            [nn.Linear(96 * 16 * 16, 10), nn.Linear(192 * 8 * 8, 10)] if companions else [])

    def forward(self, x):
        outs = []
        for i, stage in enumerate(self.body):
            x = stage(x)
            if i < len(self.companions):
                outs.append(self.companions[i](x.flatten(1)))
        return [x] + outs


def fitnet4_cifar():
    layers, c_in = [], 3
    for widths in ([32, 32, 32, 48, 48], [80] * 6, [128] * 6):
        for c in widths:
            layers += [nn.Conv2d(c_in, 2 * c, 3, padding=1), Maxout(2)]
            c_in = c
        layers.append(nn.MaxPool2d(2) if c_in != 128 else nn.MaxPool2d(8))
    layers += [nn.Flatten(), nn.Linear(128, 1000), Maxout(2), nn.Linear(500, 10)]
    return nn.Sequential(*layers)


def cbr(i, o, k, s=1):
    return nn.Sequential(nn.Conv2d(i, o, k, s, k // 2, bias=False), nn.BatchNorm2d(o), nn.ReLU())


class BnInception(nn.Module):
    """One module of Figure 5: (c1, c3r, c3, d3r, d3, pool, proj); c1 = 0 and pool 'pass' for
    the stride-2 modules."""

    def __init__(self, cin, c1, c3r, c3, d3r, d3, pool, proj):
        super().__init__()
        s = 2 if pool == "pass" else 1
        self.b1 = cbr(cin, c1, 1) if c1 else None
        self.b2 = nn.Sequential(cbr(cin, c3r, 1), cbr(c3r, c3, 3, s))
        self.b3 = nn.Sequential(cbr(cin, d3r, 1), cbr(d3r, d3, 3), cbr(d3, d3, 3, s))
        if pool == "pass":
            self.b4 = nn.MaxPool2d(3, 2, ceil_mode=True)
        else:
            p = nn.AvgPool2d(3, 1, 1) if pool == "avg" else nn.MaxPool2d(3, 1, 1)
            self.b4 = nn.Sequential(p, cbr(cin, proj, 1))
        self.out = (c1 or 0) + c3 + d3 + (cin if pool == "pass" else proj)

    def forward(self, x):
        parts = [self.b1(x)] if self.b1 else []
        return torch.cat(parts + [self.b2(x), self.b3(x), self.b4(x)], 1)


def bn_inception():
    layers = [cbr(3, 64, 7, 2), nn.MaxPool2d(3, 2, ceil_mode=True), cbr(64, 64, 1),
              cbr(64, 192, 3), nn.MaxPool2d(3, 2, ceil_mode=True)]
    cin = 192
    for spec in [
        (64, 64, 64, 64, 96, "avg", 32), (64, 64, 96, 64, 96, "avg", 64),
        (0, 128, 160, 64, 96, "pass", 0),
        (224, 64, 96, 96, 128, "avg", 128), (192, 96, 128, 96, 128, "avg", 128),
        (160, 128, 160, 128, 160, "avg", 128), (96, 128, 192, 160, 192, "avg", 128),
        (0, 128, 192, 192, 256, "pass", 0),
        (352, 192, 320, 160, 224, "avg", 128), (352, 192, 320, 192, 224, "max", 128),
    ]:
        m = BnInception(cin, *spec)
        layers.append(m)
        cin = m.out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 1000)]
    return nn.Sequential(*layers)


class Spp(nn.Module):
    def __init__(self, levels):
        super().__init__()
        self.levels = levels

    def forward(self, x):
        return torch.cat([F.adaptive_max_pool2d(x, b).flatten(1) for b in self.levels], 1)


def prelu_net(n, c2, c3, c4):
    def conv(i, o, k, s=1):
        return [nn.Conv2d(i, o, k, s, k // 2), nn.PReLU(o)]

    layers = conv(3, 96, 7, 2) + [nn.MaxPool2d(3, 2, 1)]
    cin = 96
    for stage, c in enumerate((c2, c3, c4)):
        if stage:
            layers.append(nn.MaxPool2d(2))
        for _ in range(n):
            layers += conv(cin, c, 3)
            cin = c
    layers += [Spp((7, 3, 2, 1)),
               nn.Linear(c4 * 63, 4096), nn.PReLU(4096), nn.Dropout(0.5),
               nn.Linear(4096, 4096), nn.PReLU(4096), nn.Dropout(0.5),
               nn.Linear(4096, 1000)]
    return nn.Sequential(*layers)


def count(m):
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def main():
    cifar = torch.zeros(1, 3, 32, 32)
    imagenet = torch.zeros(1, 3, 224, 224)
    nets = [
        ("maxout_cifar", maxout_cifar(), cifar),
        ("nin_cifar", Nin(), cifar),
        ("dsn_cifar", Nin(companions=True), cifar),
        ("fitnet4_cifar", fitnet4_cifar(), cifar),
        ("bn_inception", bn_inception(), imagenet),
        ("prelu_net_a", prelu_net(5, 256, 512, 512), imagenet),
        ("prelu_net_b", prelu_net(6, 256, 512, 512), imagenet),
        ("prelu_net_c", prelu_net(6, 384, 768, 896), imagenet),
    ]
    for name, m, x in nets:
        m.eval()
        with torch.no_grad():
            y = m(x)
        shapes = [tuple(t.shape) for t in y] if isinstance(y, list) else [tuple(y.shape)]
        print(f"{name:<14} {count(m):>12,} parameters  outputs {shapes}")


if __name__ == "__main__":
    main()
