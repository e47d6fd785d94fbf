#!/usr/bin/env python3
"""Reference training runs for archc's training parity test (runtime/tests/train_parity.rs).

The networks of runtime/tests/fixtures/train_parity.arch, built here in PyTorch with
torchvision's names: a CIFAR ResNet with option A shortcuts (`resnet_a`), the same with
projection shortcuts (`resnet_b`) and a VGG with batch norm and biased convs (`vgg_bn`). From
seeded initial weights (batch norm scales, shifts and running statistics moved off their
defaults) each is trained for 10 steps at lr 0.01 on a small data set, written in CIFAR-10's
binary format so that `archc train --data cifar10:DIR` reads it: the whole training split is
one batch, no augmentation, the input is pixels / 255 minus the per-pixel mean of the training
split (as archc's pipeline does). Cases:

    sgd       torch.optim.SGD, momentum 0.9, weight decay 5e-4; the learning rate of
              ChainedScheduler(ConstantLR(factor 0.2, 3 steps), MultiStepLR([6], 0.1)):
              archc's --warmup 3:0.002 --milestones 6 (all three networks)
    adamw     torch.optim.AdamW, weight decay 0.01, betas (0.9, 0.999), eps 1e-8 (resnet_a
              only: AdamW's normalised step, m / sqrt(v), turns a gradient's rounding into a
              step of the size lr where the gradient is near zero. A VGG conv bias before
              batch norm has a gradient that is zero but for rounding; on resnet_b archc's
              float32 gradients on burn-flex drift from PyTorch's (losses 3e-5 apart at step
              4, 2e-4 at step 7; the tensors still within 2% of their movement) while PyTorch
              in float32 and in float64 agree within 7e-6 over the 10 steps, as measured when
              this script was written; archc's gradients there are less accurate than
              PyTorch's, which is worth a look of its own)
    finetune  SGD as above without the schedule; conv1, bn1 and layer1 frozen
              (requires_grad off, their batch norms in eval mode) and layer2 at 0.1 times the
              learning rate: archc's --freeze conv1,bn1,layer1 --lr-scale layer2=0.1 (resnet_b)

Writes OUT/data/cifar-10-batches-bin/*.bin, OUT/NET.init.safetensors (the initial state dict),
OUT/NET.CASE.final.safetensors (the state dict after 10 steps) and OUT/manifest.json (per run:
the flags, and PyTorch's loss and learning rate at each step).

Needs torch 2.9.0:  python3 scripts/train_parity.py OUT_DIR
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

STEPS = 10
LR = 0.01
TRAIN_PER_FILE = 4  # 5 files: 20 training images, one batch
TEST = 4


class BasicBlock(nn.Module):
    """The basic block; `option` A pads channels and subsamples where the shape changes, B
    projects there (torchvision's `downsample`: 1x1 conv and batch norm)."""

    def __init__(self, cin, cout, stride, option):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.option = option
        self.stride = stride
        self.pad = cout - cin
        self.downsample = None
        if option == "B" and (stride != 1 or cin != cout):
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        sc = x
        if self.downsample is not None:
            sc = self.downsample(x)
        elif self.stride != 1 or self.pad != 0:
            sc = x[:, :, :: self.stride, :: self.stride]
            sc = F.pad(sc, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + sc)


class ResNet(nn.Module):
    def __init__(self, option):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.layer1 = nn.Sequential(BasicBlock(4, 4, 1, option))
        self.layer2 = nn.Sequential(BasicBlock(4, 8, 2, option))
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class VggBn(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 4, 3, 1, 1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 8, 3, 1, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        self.classifier = nn.Sequential(nn.Linear(8 * 2 * 2, 16), nn.ReLU(), nn.Linear(16, 10))

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


NETS = {
    "resnet_a": lambda: ResNet("A"),
    "resnet_b": lambda: ResNet("B"),
    "vgg_bn": VggBn,
}

# archc's flags for each case (besides the common ones the test gives), and which networks.
CASES = {
    "sgd": {"nets": ["resnet_a", "resnet_b", "vgg_bn"], "optimizer": "sgd", "momentum": 0.9,
            "weight_decay": 5e-4, "warmup": [3, 0.002], "milestones": [6], "freeze": [], "lr_scale": []},
    "adamw": {"nets": ["resnet_a"], "optimizer": "adamw", "weight_decay": 0.01,
              "betas": [0.9, 0.999], "eps": 1e-8, "milestones": [], "freeze": [], "lr_scale": []},
    "finetune": {"nets": ["resnet_b"], "optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4,
                 "milestones": [], "freeze": ["conv1", "bn1", "layer1"], "lr_scale": [["layer2", 0.1]]},
}


def under(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def write_data(out, g):
    """CIFAR-10 binary files: 5 training files of TRAIN_PER_FILE records and a test file. The
    images are smooth random patterns (a low-resolution random image upsampled) with noise."""
    d = os.path.join(out, "data", "cifar-10-batches-bin")
    os.makedirs(d, exist_ok=True)
    train = []

    def records(n):
        labels = torch.randint(0, 10, (n,), generator=g)
        low = torch.rand(n, 3, 4, 4, generator=g)
        img = F.interpolate(low, size=(32, 32), mode="bilinear", align_corners=False)
        img = (img * 200 + torch.rand(n, 3, 32, 32, generator=g) * 55).clamp(0, 255)
        pixels = img.to(torch.uint8)
        rec = torch.cat([labels.to(torch.uint8)[:, None], pixels.reshape(n, -1)], dim=1)
        return rec.numpy().tobytes(), pixels, labels

    for k in range(1, 6):
        b, p, l = records(TRAIN_PER_FILE)
        with open(os.path.join(d, f"data_batch_{k}.bin"), "wb") as f:
            f.write(b)
        train.append((p, l))
    b, _, _ = records(TEST)
    with open(os.path.join(d, "test_batch.bin"), "wb") as f:
        f.write(b)
    pixels = torch.cat([p for p, _ in train])
    labels = torch.cat([l for _, l in train])
    # archc: per-pixel mean over the training split, summed in f64, divided by n * 255, as f32.
    mean = (pixels.to(torch.float64).sum(0) / (pixels.shape[0] * 255.0)).to(torch.float32)
    x = pixels.to(torch.float32) / 255.0 - mean
    return x, labels.to(torch.int64)


def randomise_bn(model, g):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)


def train(model, case, x, y):
    """STEPS steps on the batch (x, y); PyTorch's loss and learning rate at each step."""
    c = CASES[case]
    frozen = [m for n, m in model.named_modules() if n and any(under(n, p) for p in c["freeze"])]
    groups = {}
    for n, p in model.named_parameters():
        layer = n.rsplit(".", 1)[0]
        if any(under(layer, q) for q in c["freeze"]):
            p.requires_grad_(False)
            continue
        scale = 1.0
        for prefix, f in c["lr_scale"]:
            if under(layer, prefix):
                scale = f
        groups.setdefault(scale, []).append(p)
    params = [{"params": ps, "lr": LR * s} for s, ps in groups.items()]
    if c["optimizer"] == "sgd":
        opt = torch.optim.SGD(params, lr=LR, momentum=c["momentum"], weight_decay=c["weight_decay"])
    else:
        opt = torch.optim.AdamW(params, lr=LR, betas=tuple(c["betas"]), eps=c["eps"], weight_decay=c["weight_decay"])
    schedulers = []
    if "warmup" in c:
        iters, lr = c["warmup"]
        schedulers.append(torch.optim.lr_scheduler.ConstantLR(opt, factor=lr / LR, total_iters=iters))
    if c["milestones"]:
        schedulers.append(torch.optim.lr_scheduler.MultiStepLR(opt, milestones=c["milestones"], gamma=0.1))
    sched = torch.optim.lr_scheduler.ChainedScheduler(schedulers) if schedulers else None
    model.train()
    for m in frozen:
        m.eval()  # as PyTorch users freeze a backbone: batch norm uses and keeps its statistics
    losses, lrs = [], []
    for _ in range(STEPS):
        # The rate of the unscaled group (archc's metric rows show the base rate).
        lrs.append(next(g["lr"] for g, s in zip(opt.param_groups, groups) if s == 1.0))
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
    return losses, lrs


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "train_parity"
    os.makedirs(out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    g = torch.Generator().manual_seed(22)
    x, y = write_data(out, g)
    runs = []
    for k, (name, make) in enumerate(NETS.items()):
        torch.manual_seed(100 + k)
        model = make()
        randomise_bn(model, g)
        init = {n: t.detach().clone().contiguous() for n, t in model.state_dict().items()}
        save_file(init, os.path.join(out, f"{name}.init.safetensors"))
        for case, c in CASES.items():
            if name not in c["nets"]:
                continue
            model.load_state_dict(init)
            losses, lrs = train(model, case, x, y)
            final = {n: t.detach().clone().contiguous() for n, t in model.state_dict().items()}
            save_file(final, os.path.join(out, f"{name}.{case}.final.safetensors"))
            flags = {k: v for k, v in c.items() if k != "nets"}
            runs.append({"network": name, "case": case, "flags": flags, "losses": losses, "lrs": lrs})
            print(f"{name} {case}: loss {losses[0]:.4f} -> {losses[-1]:.4f}, lr {lrs}")
    manifest = {"steps": STEPS, "lr": LR, "images": int(x.shape[0]), "runs": runs}
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)


if __name__ == "__main__":
    main()
