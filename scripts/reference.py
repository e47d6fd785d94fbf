#!/usr/bin/env python3
"""Independent references for archc's preprocessing tests (runtime/tests/reference.rs).

Everything here is computed with numpy, torch and torchvision's functional transforms, never
with archc. Writes into OUT:

    cifar-10-batches-bin/     a small CIFAR-10 in the published binary format: five training
                              files of 20 records and a test file of 20, seeded random pixels
    cifar_mean.safetensors    `mean` [3, 32, 32]: numpy's per-pixel average, scaled to [0, 1],
                              of the 90 training images archc trains on (the last 10 of the
                              100 are its validation part, --val-fraction 0.1); `test` [20, 3,
                              32, 32]: the test images as the evaluation transform gives them
                              (pixels / 255 minus that mean)
    crops.safetensors         `candidates` [2, 9, 9, 3, 32, 32]: every 32x32 crop (top, left in
                              0..=8) of test image 0 zero-padded by 4 pixels (pixels / 255, no
                              mean), unflipped and flipped (torchvision's pad, crop, hflip)
    folder/a/*.png, folder/b/*.png
                              an image folder: two classes, images of several sizes
    folder.safetensors        `NAME` [3, 16, 16] for each image: torchvision's resize of the
                              shorter side to 18 (the evaluation side archc uses for a 16x16
                              input: 16 * 256 / 224, rounded), bilinear with antialias=True
                              (the default) on the float image, then its centre crop of 16x16,
                              / 255; `NAME.pil`: the same transforms on the PIL image (PIL's
                              resize, 8-bit output), then to_tensor. up_16x16 already has the
                              input's size: it is resized and cropped all the same
    nets/NAME.safetensors     seeded weights (archc's state-dict names, BN statistics off
                              their defaults) of small PyTorch models written here from the
                              published descriptions: a Highway network (Srivastava et al.
                              2015, y = H(x) T(x) + x (1 - T(x))), a pre-activation ResNet
                              (He et al. 2016b, option A) and plain and residual MLPs
    nets/NAME.io.safetensors  `input` [2, 3, 32, 32] and PyTorch's eval-mode `output` [2, 10]
    manifest.json             the image names and sizes; each net's archc file, network and
                              PyTorch's parameter count

Needs torch 2.9.0, torchvision 0.24.0, numpy and pillow (the CI venv, scripts/libtorch.sh):
    scripts/libtorch.sh python scripts/reference.py OUT_DIR
"""

import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image
from safetensors.torch import save_file


def cifar(out, rng):
    d = os.path.join(out, "cifar-10-batches-bin")
    os.makedirs(d, exist_ok=True)
    files = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    images = {}
    for name in files:
        labels = rng.integers(0, 10, size=20, dtype=np.uint8)
        pixels = rng.integers(0, 256, size=(20, 3, 32, 32), dtype=np.uint8)
        records = np.concatenate([labels[:, None], pixels.reshape(20, -1)], axis=1)
        records.astype(np.uint8).tofile(os.path.join(d, name))
        images[name] = pixels
    train = np.concatenate([images[f"data_batch_{i}.bin"] for i in range(1, 6)])
    # CIFAR's files are in random order, so archc holds out the last round(100 * 0.1) images.
    kept = train[:90].astype(np.float64)
    mean = (kept.mean(axis=0) / 255.0).astype(np.float32)
    test = images["test_batch.bin"].astype(np.float32) / np.float32(255.0) - mean[None]
    save_file(
        {"mean": torch.from_numpy(mean), "test": torch.from_numpy(np.ascontiguousarray(test))},
        os.path.join(out, "cifar_mean.safetensors"),
    )
    # Every crop of test image 0 padded by 4, unflipped and flipped.
    img = torch.from_numpy(images["test_batch.bin"][0].astype(np.float32)) / 255.0
    padded = TF.pad(img, [4, 4, 4, 4], fill=0.0)
    cands = torch.zeros(2, 9, 9, 3, 32, 32)
    for top in range(9):
        for left in range(9):
            crop = TF.crop(padded, top, left, 32, 32)
            cands[0, top, left] = crop
            cands[1, top, left] = TF.hflip(crop)
    save_file({"candidates": cands.contiguous()}, os.path.join(out, "crops.safetensors"))


def folder(out, rng):
    # (class, name, height, width), each resized to shorter side 18 and centre-cropped to
    # 16x16: upscaled (shorter side 12 or 16), downscaled by integer and non-integer factors
    # (shorter side 27 to 48: factors 1.5 to 2.67), landscape and portrait. down_27x40 and
    # up_12x13 have a long side that torchvision truncates (26.7 to 26, 19.5 to 19);
    # down_46x36, down_38x36 and up_12x13 leave odd margins of 7, 3 and 3 for the crop, which
    # torchvision places with Python's round (half to even: 3.5 to 4, 1.5 to 2).
    images = [
        ("a", "up_12x20", 12, 20),
        ("a", "up_16x16", 16, 16),
        ("a", "up_12x13", 12, 13),
        ("b", "down_30x40", 30, 40),
        ("b", "down_48x36", 48, 36),
        ("a", "down_64x48", 64, 48),
        ("b", "down_27x40", 27, 40),
        ("a", "down_46x36", 46, 36),
        ("b", "down_38x36", 38, 36),
    ]
    refs = {}
    for cls, name, h, w in images:
        os.makedirs(os.path.join(out, "folder", cls), exist_ok=True)
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        pil = Image.fromarray(pixels, "RGB")
        pil.save(os.path.join(out, "folder", cls, name + ".png"))
        # torchvision's evaluation transform on a float tensor: Resize(18) (bilinear,
        # antialias=True, the default since torchvision 0.17), CenterCrop(16), / 255.
        t = torch.from_numpy(pixels).permute(2, 0, 1).float()
        r = TF.resize(t, [18], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        refs[name] = (TF.center_crop(r, [16, 16]) / 255.0).contiguous()
        # The same on the PIL image, as torchvision's ImageNet evaluation transform is usually
        # written (Resize, CenterCrop, ToTensor): PIL's antialiased bilinear, in 8 bits.
        r = TF.resize(pil, [18], interpolation=TF.InterpolationMode.BILINEAR)
        refs[name + ".pil"] = TF.to_tensor(TF.center_crop(r, [16, 16])).contiguous()
    save_file(refs, os.path.join(out, "folder.safetensors"))
    return [{"class": c, "name": n, "height": h, "width": w} for c, n, h, w in images]


class Highway(nn.Module):
    """One highway layer: H = relu(bn(conv3x3(x))), T = sigmoid(conv1x1(x) + b)."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.gate = nn.Conv2d(c, c, 1, bias=True)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        t = torch.sigmoid(self.gate(x))
        return h * t + x * (1 - t)


class HighwayStage(nn.Module):
    """[max pool 2x2], a plain conv-BN-ReLU to `c` channels, then `n` highway layers."""

    def __init__(self, cin, c, n, pool):
        super().__init__()
        self.pool = pool
        self.conv1 = nn.Conv2d(cin, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        for i in range(n):
            self.add_module(str(i), Highway(c))
        self.n = n

    def forward(self, x):
        if self.pool:
            x = F.max_pool2d(x, 2)
        x = F.relu(self.bn1(self.conv1(x)))
        for i in range(self.n):
            x = getattr(self, str(i))(x)
        return x


class Head(nn.Module):
    """[BN, ReLU,] global average pool, fc."""

    def __init__(self, c, classes, bn):
        super().__init__()
        if bn:
            self.bn1 = nn.BatchNorm2d(c)
        self.fc1 = nn.Linear(c, classes)

    def forward(self, x):
        if hasattr(self, "bn1"):
            x = F.relu(self.bn1(x))
        return self.fc1(F.adaptive_avg_pool2d(x, 1).flatten(1))


class HighwayNet(nn.Module):
    """cifar_highway19: stages of 5 highway layers at 56, 112 and 160 channels."""

    def __init__(self):
        super().__init__()
        self.stage1 = HighwayStage(3, 56, 5, False)
        self.stage2 = HighwayStage(56, 112, 5, True)
        self.stage3 = HighwayStage(112, 160, 5, True)
        self.head = Head(160, 10, bn=False)

    def forward(self, x):
        return self.head(self.stage3(self.stage2(self.stage1(x))))


class PreAct(nn.Module):
    """Pre-activation basic block: y = conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut(x),
    option A: the shortcut subsamples x and pads its channels with zeros where shapes change."""

    def __init__(self, cin, c, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, c, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.stride, self.pad = stride, c - cin

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        sc = x
        if self.stride != 1 or self.pad:
            sc = x[:, :, :: self.stride, :: self.stride]
            sc = F.pad(sc, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return out + sc


class Stem(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(3, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(self.bn1(self.conv1(x)))


class PreActNet(nn.Module):
    """cifar_preact_resnet20: a conv-BN-ReLU stem, 3 stages of 3 pre-activation blocks (16, 32,
    64 channels), then BN, ReLU, global average pool and fc."""

    def __init__(self, n=3):
        super().__init__()
        self.conv1 = Stem(16)
        cin = 16
        for name, c, s in [("conv2_x", 16, 1), ("conv3_x", 32, 2), ("conv4_x", 64, 2)]:
            blocks = []
            for i in range(n):
                blocks.append(PreAct(cin, c, s if i == 0 else 1))
                cin = c
            setattr(self, name, nn.Sequential(*blocks))
        self.head = Head(64, 10, bn=True)

    def forward(self, x):
        x = self.conv1(x)
        x = self.conv4_x(self.conv3_x(self.conv2_x(x)))
        return self.head(x)


class Fc2(nn.Module):
    """Two 256-wide fc layers with ReLU; with a shortcut, y = relu(fc2(relu(fc1(x))) + x)."""

    def __init__(self, width, shortcut):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.shortcut = shortcut

    def forward(self, x):
        out = self.fc2(F.relu(self.fc1(x)))
        return F.relu(out + x) if self.shortcut else F.relu(out)


class Named(nn.Module):
    def __init__(self, **mods):
        super().__init__()
        for k, m in mods.items():
            self.add_module(k, m)


class Mlp(nn.Module):
    """mlp_fc20 / mlp_res20: flatten, fc 3072 -> 256 + ReLU, 9 blocks of two fc layers, fc 10."""

    def __init__(self, shortcut, n=9, width=256):
        super().__init__()
        self.fc1 = Named(fc1=nn.Linear(3072, width))
        self.hidden = nn.Sequential(*[Fc2(width, shortcut) for _ in range(n)])
        self.head = Named(fc1=nn.Linear(width, 10))

    def forward(self, x):
        x = F.relu(self.fc1.fc1(x.flatten(1)))
        return self.head.fc1(self.hidden(x))


def randomise(model, g):
    """BN statistics and affine parameters off their defaults; conv and fc weights He-normal
    (std sqrt(2 / fan_in)) so that 20 layers keep the signal's scale near 1."""
    for m in model.modules():
        with torch.no_grad():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    # A residual block adds its branch to its input, doubling the signal's variance: scale each
    # branch's last layer down so that the logits stay near 1 and an absolute tolerance of
    # 1e-4 means what it says.
    for m in model.modules():
        with torch.no_grad():
            if isinstance(m, Fc2) and m.shortcut:
                m.fc2.weight.mul_(0.3)
            elif isinstance(m, PreAct):
                m.conv2.weight.mul_(0.3)


def nets(out):
    d = os.path.join(out, "nets")
    os.makedirs(d, exist_ok=True)
    models = [
        ("cifar_highway19", "architectures/highway.arch", HighwayNet),
        ("cifar_preact_resnet20", "architectures/preact.arch", PreActNet),
        ("mlp_fc20", "architectures/mlp.arch", lambda: Mlp(shortcut=False)),
        ("mlp_res20", "architectures/mlp.arch", lambda: Mlp(shortcut=True)),
    ]
    manifest = []
    for seed, (name, file, make) in enumerate(models):
        torch.manual_seed(3000 + seed)
        g = torch.Generator().manual_seed(4000 + seed)
        model = make()
        randomise(model, g)
        model.eval()
        x = torch.randn([2, 3, 32, 32], generator=g)
        with torch.no_grad():
            y = model(x)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, os.path.join(d, f"{name}.safetensors"))
        save_file({"input": x.contiguous(), "output": y.contiguous()}, os.path.join(d, f"{name}.io.safetensors"))
        params = sum(p.numel() for p in model.parameters())
        manifest.append({"name": name, "file": file, "network": name, "params": params})
        print(f"{name}: {params} parameters, max |output| {y.abs().max().item():.3g}")
    return manifest


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "reference"
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(24)
    cifar(out, rng)
    images = folder(out, rng)
    torch.use_deterministic_algorithms(True)
    models = nets(out)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"folder": images, "nets": models}, f, indent=2)
    print(f"reference.py: wrote {out}")


if __name__ == "__main__":
    main()
