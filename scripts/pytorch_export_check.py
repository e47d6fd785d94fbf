#!/usr/bin/env python3
"""Check `archc export --format pytorch` for every network of every zoo file (CI, parity stage).

For each network of each `architectures/*.arch` file:

1. The module exported at the declared input, built on the meta device, has the parameter
   count `archc report FILE --format json` gives (not the export's own figure).
2. The module exported at a small input (64x64 where the network allows it: global pooling,
   or a classifier sized from the input, as `archc report --input` counts it; else the first of
   96, 128 and the declared size that compiles) gets seeded random weights (batch-norm
   statistics, layer-norm and layer-scale values away from their defaults); they are saved
   as safetensors, loaded by `archc forward` (its loading refuses a missing or unexpected
   name) and by the module with `load_state_dict(strict=True)`, and archc's eval-mode output on
   one random input [1, C, H, W] must agree with the module's in float64: max |difference| <=
   1e-4 * max(1, max |output|), or <= 10 times PyTorch's own float32 error where that is larger
   (deep plain networks amplify rounding: PyTorch's float32 cifar_plain110 is ~1 off its float64).
3. Each zoo network that is a torchvision model (torchvision's names and architecture; the
   `TORCHVISION` table) loads torchvision's own state_dict strictly into the module exported at
   the declared input, and both give the same eval-mode output on a random input.

Usage: python3 scripts/pytorch_export_check.py ARCHC_BINARY [--work DIR] [--only REGEX]
           [--max-params N]
--max-params: step 2 only for modules of at most N parameters at the small input (the others
still get steps 1 and 3); CI sets it, as loading 100M-parameter classifiers in a debug build
of archc takes most of a minute each (the full zoo: scripts/pytorch_export_check.py ARCHC).
Needs torch 2.9.0, torchvision 0.24.0 and safetensors.
"""

import argparse
import glob
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import torch
import torchvision
from safetensors.torch import load_file, save_file

# Zoo network → torchvision constructor, for the networks written with torchvision's names and
# layers (`resnet50` without `_tv` is the paper's bottleneck, stride on the 1x1: not these; the
# SqueezeNets, MNASNets and RegNets of the zoo keep archc's own names).
TORCHVISION = {
    "resnet18": lambda: torchvision.models.resnet18(),
    "resnet34": lambda: torchvision.models.resnet34(),
    "resnet50_tv": lambda: torchvision.models.resnet50(),
    "resnet101_tv": lambda: torchvision.models.resnet101(),
    "resnet152_tv": lambda: torchvision.models.resnet152(),
    "resnext50_32x4d": lambda: torchvision.models.resnext50_32x4d(),
    "resnext101_32x8d": lambda: torchvision.models.resnext101_32x8d(),
    "resnext101_64x4d": lambda: torchvision.models.resnext101_64x4d(),
    "wide_resnet50_2": lambda: torchvision.models.wide_resnet50_2(),
    "wide_resnet101_2": lambda: torchvision.models.wide_resnet101_2(),
    "vgg11": lambda: torchvision.models.vgg11(),
    "vgg13": lambda: torchvision.models.vgg13(),
    "vgg16": lambda: torchvision.models.vgg16(),
    "vgg19": lambda: torchvision.models.vgg19(),
    "vgg11_bn": lambda: torchvision.models.vgg11_bn(),
    "vgg13_bn": lambda: torchvision.models.vgg13_bn(),
    "vgg16_bn": lambda: torchvision.models.vgg16_bn(),
    "vgg19_bn": lambda: torchvision.models.vgg19_bn(),
    "alexnet": lambda: torchvision.models.alexnet(),
    "googlenet": lambda: torchvision.models.googlenet(aux_logits=True, init_weights=True),
    "inception_v3": lambda: torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True),
    "densenet121": lambda: torchvision.models.densenet121(),
    "densenet161": lambda: torchvision.models.densenet161(),
    "densenet169": lambda: torchvision.models.densenet169(),
    "densenet201": lambda: torchvision.models.densenet201(),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(),
    "mobilenet_v3_large": lambda: torchvision.models.mobilenet_v3_large(),
    "mobilenet_v3_small": lambda: torchvision.models.mobilenet_v3_small(),
    "shufflenet_v2_x0_5": lambda: torchvision.models.shufflenet_v2_x0_5(),
    "shufflenet_v2_x1_0": lambda: torchvision.models.shufflenet_v2_x1_0(),
    "shufflenet_v2_x1_5": lambda: torchvision.models.shufflenet_v2_x1_5(),
    "shufflenet_v2_x2_0": lambda: torchvision.models.shufflenet_v2_x2_0(),
    "convnext_tiny": lambda: torchvision.models.convnext_tiny(),
    "convnext_small": lambda: torchvision.models.convnext_small(),
    **{f"efficientnet_b{i}": (lambda i=i: getattr(torchvision.models, f"efficientnet_b{i}")()) for i in range(8)},
    "efficientnet_v2_s": lambda: torchvision.models.efficientnet_v2_s(),
}

TOLERANCE = 1e-4


def run(*args):
    """An archc command's stdout, or None (its stderr printed) if it fails."""
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr
    return r.stdout, r.stderr


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def blank(make):
    """`make()` without PyTorch's initialisation (slow for 100M parameters, and overwritten):
    built on the meta device, then given zeroed memory."""
    try:
        with torch.device("meta"):
            model = make()
    except NotImplementedError:
        return make()  # a constructor that computes with tensors (torchvision's RegNet)
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            t.zero_()
    return model


def export(archc, file, network, path, shape=None):
    args = [archc, "export", file, "-n", network, "-f", "pytorch", "-o", path]
    if shape is not None:
        args += ["--input", "x".join(map(str, shape))]
    out, err = run(*args)
    return out is not None, err


def randomise(model, g):
    """Weights that keep the signal alive through deep networks (He-normal convs and linears)
    and normalisation state away from its defaults, so that loading every tensor matters."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_scale"):
                p.copy_(torch.rand(p.shape, generator=g) * 0.3 + 0.1)
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            elif isinstance(m, (torch.nn.LayerNorm, torch.nn.GroupNorm)):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            elif isinstance(m, torch.nn.PReLU):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5)


def calibrate(model, shape, g):
    """Batch-norm statistics measured on a random batch of 4 (train mode), then moved off them,
    so that deep residual networks neither overflow nor vanish while every statistic matters."""
    bns = [m for m in model.modules() if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d))]
    if not bns:
        return
    momentum = [m.momentum for m in bns]
    for m in bns:
        m.momentum = None  # a plain average
        m.reset_running_stats()
    model.train()
    with torch.no_grad():
        model(torch.randn([4] + shape, generator=g))
    for m, mom in zip(bns, momentum):
        m.momentum = mom
        with torch.no_grad():
            m.running_var.mul_(torch.rand(m.num_features, generator=g) * 0.4 + 0.8)
            m.running_mean.add_(torch.randn(m.num_features, generator=g) * 0.1 * m.running_var.sqrt())


def close(a, b, floor=0.0):
    """max |a - b| within TOLERANCE * max(1, max |b|), or within `floor`."""
    scale = max(1.0, b.abs().max().item())
    diff = (a - b).abs().max().item()
    return diff <= max(TOLERANCE * scale, floor), diff, scale  # False for a NaN


def small_shapes(declared):
    if len(declared) != 3:
        return [declared]
    c, h, w = declared
    sizes = [s for s in (64, 96, 128) if s < min(h, w)]
    return [[c, s, s] for s in sizes] + [declared]


def main():
    ap = argparse.ArgumentParser(description="Check archc export --format pytorch on the zoo.")
    ap.add_argument("archc")
    ap.add_argument("--work", default=None)
    ap.add_argument("--only", default=None, help="a regex of network names")
    ap.add_argument("--max-params", type=int, default=None)
    args = ap.parse_args()
    archc = os.path.abspath(args.archc)
    work = args.work or tempfile.mkdtemp(prefix="archc-export-")
    os.makedirs(work, exist_ok=True)
    only = args.only
    heavy = []  # not run through archc forward (--max-params)
    torch.use_deterministic_algorithms(True)
    # One thread: these are small batches, and extra threads only wait on a busy machine
    # (a 110-layer forward took 6.8 s with two threads beside other jobs, 0.07 s with one).
    torch.set_num_threads(1)
    failures = []
    checked = 0
    tv_checked = 0
    chaotic = []  # passed by PyTorch's own float32 error, not by 1e-4
    start = time.time()
    # The zoo, and every unit op on maps and on vectors (the runtime's codegen fixture).
    files = sorted(glob.glob("architectures/*.arch")) + ["runtime/tests/fixtures/units.arch"]
    for seed_file, file in enumerate(files):
        out, err = run(archc, "report", file, "--format", "json")
        if out is None and "defines no networks" in err:
            continue  # a library of blocks
        if out is None:
            failures.append(f"{file}: archc report failed: {err}")
            continue
        for seed_net, report in enumerate(json.loads(out)):
            net = report["network"]
            if only and not re.search(only, net):
                continue
            t0 = time.time()
            path = os.path.join(work, f"{net}.py")
            ok, err = export(archc, file, net, path)
            if not ok:
                failures.append(f"{net}: export failed: {err}")
                continue
            # 1. The parameter count of the report.
            declared_module = load_module(path, net)
            with torch.device("meta"):
                model = declared_module.build()
            params = sum(p.numel() for p in model.parameters())
            if params != report["params"]:
                failures.append(f"{net}: {params} parameters, the report says {report['params']}")
            # 2. archc's forward against the module's, with the same weights.
            for shape in small_shapes(report["input"]):
                if shape == report["input"]:
                    small_module = declared_module
                    break
                small = os.path.join(work, f"{net}_small.py")
                ok, _ = export(archc, file, net, small, shape)
                if ok:
                    small_module = load_module(small, net)
                    break
            g = torch.Generator().manual_seed(1000 * seed_file + seed_net)
            torch.manual_seed(1000 * seed_file + seed_net)
            small_params = params
            if small_module is not declared_module:
                with torch.device("meta"):
                    small_params = sum(p.numel() for p in small_module.build().parameters())
            run_archc = args.max_params is None or small_params <= args.max_params
            if not run_archc:
                heavy.append(net)
            diff = scale = err32 = float("nan")
            t_archc = 0.0
            if run_archc:
                model = blank(small_module.build)
                randomise(model, g)
                calibrate(model, shape, g)
                model.eval()
                state = {k: v.contiguous() for k, v in model.state_dict().items()}
                weights = os.path.join(work, "weights.safetensors")
                save_file(state, weights)
                fresh = blank(small_module.build)
                fresh.load_state_dict(load_file(weights), strict=True)
                fresh.eval()
                x = torch.randn([1] + shape, generator=g)
                io_in, io_out = os.path.join(work, "in.safetensors"), os.path.join(work, "out.safetensors")
                save_file({"input": x}, io_in)
                t_archc = time.time()
                _, err = run(archc, "forward", file, "-n", net, "--weights", weights, "--input", io_in,
                             "--output", io_out, "--input-shape", "x".join(map(str, shape)))
                if not os.path.exists(io_out):
                    failures.append(f"{net}: archc forward failed: {err}")
                    continue
                t_archc = time.time() - t_archc
                theirs = load_file(io_out)["output"]
                os.remove(io_out)
                # The reference in float64; PyTorch's own float32 error says how much the network
                # amplifies rounding (deep plain networks do, by orders of magnitude).
                with torch.no_grad():
                    ours32 = fresh(x).double()
                    ours = fresh.double()(x.double())
                    err32 = (ours32 - ours).abs().max().item()
                fresh.float()
                good, diff, scale = close(theirs.double(), ours, 10 * err32)
                if diff > TOLERANCE * scale:
                    chaotic.append(net)
                if not good or ours.shape != theirs.shape:
                    failures.append(f"{net}: max |difference| {diff:.3g} at output scale {scale:.3g} (PyTorch's float32: {err32:.3g})")
                checked += 1
            note = ""
            # 3. torchvision's own module loads strictly and agrees (at the small input when the
            # module there has the declared one's parameters, as with global pooling).
            if net in TORCHVISION:
                torch.manual_seed(7)
                tv = blank(TORCHVISION[net])
                same = small_params == params
                tv_shape = shape if same else report["input"]
                randomise(tv, g)
                calibrate(tv, tv_shape, g)
                tv.eval()
                exported = blank(small_module.build if same else declared_module.build)
                try:
                    exported.load_state_dict(tv.state_dict(), strict=True)
                except RuntimeError as e:
                    failures.append(f"{net}: torchvision's state dict does not load: {e}")
                    continue
                exported.eval()
                x = torch.randn([1] + tv_shape, generator=g)
                with torch.no_grad():
                    good, tv_diff, tv_scale = close(exported(x), tv(x))
                if not good:
                    failures.append(f"{net}: differs from torchvision by {tv_diff:.3g} at scale {tv_scale:.3g}")
                tv_checked += 1
                note = f"; torchvision {tv_diff:.2g} at {tv_shape}"
            against = f"archc {diff:.2g} at scale {scale:.3g} (PyTorch f32 {err32:.2g})" if run_archc else "archc forward not run"
            print(f"{net}: {params} parameters, {against}, input {shape}{note} ({time.time() - t0:.1f} s, archc forward {t_archc:.1f} s)", flush=True)
    for f in ("weights.safetensors", "in.safetensors"):
        if os.path.exists(os.path.join(work, f)):
            os.remove(os.path.join(work, f))
    print(f"{checked} networks against archc forward, {tv_checked} against torchvision, {time.time() - start:.0f} s")
    if heavy:
        print(f"not run through archc forward (over --max-params {args.max_params}): {', '.join(heavy)}")
    if chaotic:
        print(f"within 10x PyTorch's own float32 error, not 1e-4: {', '.join(chaotic)}")
    if failures:
        print("FAILED:\n" + "\n".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
