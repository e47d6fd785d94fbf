#!/usr/bin/env python3
"""Reference outputs for archc's parity test (runtime/tests/parity.rs).

Writes, for each network, seeded random weights with BN running statistics that are not the
defaults, an input batch, and PyTorch's eval-mode output:

    OUT/NAME.safetensors      the state dict (torchvision names; BN buffers included)
    OUT/NAME.io.safetensors   `input` [N, C, H, W] and `output` [N, classes], float32
    OUT/resnet18.pth          the same state dict as a PyTorch pickle (torch.save)
    OUT/manifest.json         which archc file/network and input size each one is

Networks: torchvision's resnet18, resnet50 (archc's resnet50_tv), vgg11_bn, resnext50_32x4d,
wide_resnet50_2, mobilenet_v2, googlenet (with its auxiliary heads), densenet121,
shufflenet_v2_x1_0, mobilenet_v3_large, efficientnet_b0, convnext_tiny and inception_v3 (at 3x299x299,
which its auxiliary head needs), and a CIFAR ResNet-20 with option A shortcuts written in PyTorch (scripts/gpu_nets.py)
(names as torchvision's ResNet). The ImageNet networks run on 3x128x128 inputs
(the same layers as at 224, a third of the time on CPU); the CIFAR network on 3x32x32.

Needs torch 2.9.0 and torchvision 0.24.0:  python3 scripts/parity.py OUT_DIR
"""

import json
import os
import sys

import torch
import torch.nn as nn
import torchvision
from safetensors.torch import save_file

# The CIFAR ResNet with option A shortcuts (torchvision's names), shared with the GPU check,
# whose file needs torch alone.
from gpu_nets import CifarResNet


def last_bns(model):
    """The BN that ends the residual branch of each bottleneck (ResNet, ResNeXt, Wide ResNet:
    `bn3`) and of each inverted residual (MobileNetV2, MobileNetV3, EfficientNet: the BN after
    the linear projection)."""
    last = set()
    for m in model.modules():
        if isinstance(m, torchvision.models.resnet.Bottleneck):
            last.add(m.bn3)
        elif isinstance(m, torchvision.models.mobilenetv2.InvertedResidual):
            last.add(m.conv[-1])
        elif isinstance(m, (torchvision.models.mobilenetv3.InvertedResidual, torchvision.models.efficientnet.MBConv)):
            last.add(m.block[-1][1])  # the projection's BN
    return last


def randomise_bn(model, g):
    """BN statistics and affine parameters away from their defaults, so loading them matters.

    The last BN of each bottleneck gets a small scale (as trained ResNets have), so the 50-layer
    networks' logits stay near 1 and an absolute tolerance of 1e-4 means what it says.
    """
    last = last_bns(model)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                if m in last:
                    m.weight.copy_(torch.rand(c, generator=g) * 0.2 + 0.05)
                else:
                    m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)


def randomise_convnext(model, g):
    """ConvNeXt has no BN: its layer norms' affine parameters and its layer scales away from
    their defaults. At the default scale (1e-6) every residual branch would vanish beside the
    identity and parity would test the stem, the downsampling convs and the head alone; scales
    in [0.1, 0.4) make every block count while the logits stay near 1."""
    for name, p in model.named_parameters():
        with torch.no_grad():
            if name.endswith("layer_scale"):
                p.copy_(torch.rand(p.shape, generator=g) * 0.3 + 0.1)
    for m in model.modules():
        if isinstance(m, nn.LayerNorm):
            c = m.normalized_shape[0]
            with torch.no_grad():
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)


def calibrate_bn(model, g, shape):
    """BN statistics measured on random inputs, then moved off them (MobileNetV2).

    With statistics drawn at random as `randomise_bn` draws them, MobileNetV2's seven blocks
    without a shortcut shrink the signal to nothing: the output no longer depends on the input
    or on an early layer (changes below 1e-7), and no ReLU6 ever clips, so parity would test
    little. Here the running statistics are those of the activations (four train-mode batches
    of 8), then each variance is scaled by [0.8, 1.2) and each mean moved by 0.1 standard
    deviations, so loading them still matters. BN scales in [1, 3) before a ReLU6 make about 1%
    of its inputs exceed 6; the last BN of each block has a scale in [0.25, 0.75).
    """
    last = last_bns(model)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        c = m.num_features
        with torch.no_grad():
            if m in last:
                m.weight.copy_(torch.rand(c, generator=g) * 0.5 + 0.25)
            else:
                m.weight.copy_(torch.rand(c, generator=g) * 2 + 1)
            m.bias.copy_(torch.randn(c, generator=g) * 0.1)
        m.momentum = None  # a cumulative average over the batches
        m.reset_running_stats()
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn([8] + shape, generator=g))
    for m in bns:
        c = m.num_features
        m.momentum = 0.1
        with torch.no_grad():
            m.running_var.mul_(torch.rand(c, generator=g) * 0.4 + 0.8)
            m.running_mean.add_(torch.randn(c, generator=g) * 0.1 * m.running_var.sqrt())


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "parity"
    os.makedirs(out, exist_ok=True)
    torch.use_deterministic_algorithms(True)
    nets = [
        ("resnet18", "architectures/resnet.arch", "resnet18", [3, 128, 128], lambda: torchvision.models.resnet18()),
        ("resnet50_tv", "architectures/resnet.arch", "resnet50_tv", [3, 128, 128], lambda: torchvision.models.resnet50()),
        ("vgg11_bn", "architectures/vgg.arch", "vgg11_bn", [3, 128, 128], lambda: torchvision.models.vgg11_bn()),
        ("cifar_resnet20", "architectures/cifar.arch", "cifar_resnet20", [3, 32, 32], lambda: CifarResNet(3)),
        ("resnext50_32x4d", "architectures/resnext.arch", "resnext50_32x4d", [3, 128, 128], lambda: torchvision.models.resnext50_32x4d()),
        ("wide_resnet50_2", "architectures/resnext.arch", "wide_resnet50_2", [3, 128, 128], lambda: torchvision.models.wide_resnet50_2()),
        ("mobilenet_v2", "architectures/mobilenet.arch", "mobilenet_v2", [3, 128, 128], lambda: torchvision.models.mobilenet_v2()),
        # Networks that branch and merge (GoogLeNet with its auxiliary heads: evaluation runs
        # the main output alone, as torchvision's eval mode does).
        ("googlenet", "architectures/googlenet.arch", "googlenet", [3, 128, 128], lambda: torchvision.models.googlenet(aux_logits=True, init_weights=True)),
        ("densenet121", "architectures/densenet.arch", "densenet121", [3, 128, 128], lambda: torchvision.models.densenet121()),
        ("shufflenet_v2_x1_0", "architectures/shufflenet.arch", "shufflenet_v2_x1_0", [3, 128, 128], lambda: torchvision.models.shufflenet_v2_x1_0()),
        ("mobilenet_v3_large", "architectures/mobilenet_v3.arch", "mobilenet_v3_large", [3, 128, 128], lambda: torchvision.models.mobilenet_v3_large()),
        ("efficientnet_b0", "architectures/efficientnet.arch", "efficientnet_b0", [3, 128, 128], lambda: torchvision.models.efficientnet_b0()),
        # Pointwise `nn.Linear` layers on channels-last maps (1x1 convs in archc), layer norms
        # and layer scales.
        ("convnext_tiny", "architectures/convnext.arch", "convnext_tiny", [3, 128, 128], lambda: torchvision.models.convnext_tiny()),
        # Factorised convs (1x7, 7x1), nested branches and the auxiliary head, at the 299x299
        # its auxiliary head needs; BN eps 0.001.
        ("inception_v3", "architectures/inception.arch", "inception_v3", [3, 299, 299], lambda: torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)),
    ]
    calibrated = {"mobilenet_v2", "googlenet", "densenet121", "shufflenet_v2_x1_0", "mobilenet_v3_large", "efficientnet_b0", "inception_v3"}
    manifest = []
    for seed, (name, file, network, shape, make) in enumerate(nets):
        torch.manual_seed(1000 + seed)
        g = torch.Generator().manual_seed(2000 + seed)
        model = make()
        if name == "convnext_tiny":
            randomise_convnext(model, g)
        elif name in calibrated:
            calibrate_bn(model, g, shape)
        else:
            randomise_bn(model, g)
        model.eval()
        x = torch.randn([2] + shape, generator=g)
        with torch.no_grad():
            y = model(x)
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(state, os.path.join(out, f"{name}.safetensors"))
        save_file({"input": x.contiguous(), "output": y.contiguous()}, os.path.join(out, f"{name}.io.safetensors"))
        if name == "resnet18":
            torch.save(state, os.path.join(out, f"{name}.pth"))
        params = sum(p.numel() for p in model.parameters())
        manifest.append({"name": name, "file": file, "network": network, "input": shape, "params": params})
        print(f"{name}: {params} parameters, output {list(y.shape)}, max |output| {y.abs().max().item():.3g}")
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)


if __name__ == "__main__":
    main()
