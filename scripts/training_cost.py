#!/usr/bin/env python3
"""What PyTorch eager keeps for the backward, and the FLOPs it counts, for archc's training
report (tests/training_cost.rs compares `archc report --training` with these).

For each network and batch size, in training mode (batch norm on batch statistics, dropout
on), one step's forward and its loss (softmax cross-entropy, each output weighted as archc's
`outputs` setting weights it):

- saved_bytes: the tensors autograd saves for the backward, seen by
  torch.autograd.graph.saved_tensors_hooks, each storage once (by its address; a view saves
  the whole storage, counted at its size), parameters and buffers excluded. Measured on the
  CPU: PyTorch's CPU dropout keeps an f32 mask where CUDA keeps a bool one (archc counts the
  bool); the difference is printed (`cpu_dropout_excess`).
- forward_flops, backward_flops (null at the smaller batch): torch.utils.flop_counter's
  FlopCounterMode around the forward with the loss, and around the backward, on the meta
  device (shapes only, nothing computed). It counts convolutions and matrix products, 2 FLOPs
  per multiply-add, and biases, batch norm, activations, pools and additions not at all.
- peak_bytes (null at the smaller batch): the most tensor memory live at once
  during one training step (forward, loss, backward, optimizer step), from the profiler's
  memory timeline (torch.profiler, profile_memory=True, export_memory_timeline on the CPU).
  The step is archc's default: SGD with momentum 0.9 and weight decay 1e-4, the optimizer's
  state already allocated (a step in the middle of a run), zero_grad(set_to_none=True), and
  foreach=True (what PyTorch picks on CUDA; on the CPU it would update tensor by tensor).
- grouped_weight_grad_excess: FlopCounterMode (torch 2.9) counts a grouped convolution's
  weight gradient as if it were not grouped (groups times the multiply-adds it does). The
  excess is measured with FlopCounterMode itself, on each grouped convolution alone (its
  weight gradient counted, minus 2 FLOPs per multiply-add of the convolution), so that the
  test can take it out; a torch that counts it right measures 0.

Writes OUT/training_cost.json. Networks: the parity script's torchvision models and CIFAR
ResNet-20, and the reference script's Highway network and pre-activation ResNet: the ImageNet
networks at 96x96 (the same layers as at 224 on smaller maps, a fifth of the work), batches 1
and 4; the CIFAR networks at 32x32, batches 2 and 16 (Highway: 8). FLOPs and the peak are
measured at the larger batch. About 4 minutes on two busy cores, most of it CPU forward passes.

Needs torch 2.9.0 and torchvision 0.24.0 (scripts/libtorch.sh's venv):
    scripts/libtorch.sh python scripts/training_cost.py OUT_DIR [NETWORK...] [--verbose]
(NETWORK...: only those; --verbose lists every saved tensor.)
"""

import json
import os
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity import CifarResNet  # noqa: E402
from reference import HighwayNet, PreActNet  # noqa: E402

IMAGENET = [3, 96, 96]
CIFAR = [3, 32, 32]

# (archc file, network, input, batch sizes, constructor, loss weights of the outputs)
CASES = [
    ("cifar.arch", "cifar_resnet20", CIFAR, [2, 16], lambda: CifarResNet(3), [1.0]),
    ("preact.arch", "cifar_preact_resnet20", CIFAR, [2, 16], lambda: PreActNet(3), [1.0]),
    ("highway.arch", "cifar_highway19", CIFAR, [2, 8], lambda: HighwayNet(), [1.0]),
    ("resnet.arch", "resnet18", IMAGENET, [1, 4], lambda: torchvision.models.resnet18(), [1.0]),
    ("resnet.arch", "resnet50_tv", IMAGENET, [1, 4], lambda: torchvision.models.resnet50(), [1.0]),
    ("vgg.arch", "vgg11_bn", IMAGENET, [1, 4], lambda: torchvision.models.vgg11_bn(), [1.0]),
    ("mobilenet.arch", "mobilenet_v2", IMAGENET, [1, 4], lambda: torchvision.models.mobilenet_v2(), [1.0]),
    ("densenet.arch", "densenet121", IMAGENET, [1, 4], lambda: torchvision.models.densenet121(), [1.0]),
    # Training mode runs the auxiliary heads: outputs (main, aux2, aux1), weighted 1, 0.3, 0.3.
    ("googlenet.arch", "googlenet", IMAGENET, [1, 4],
     lambda: torchvision.models.googlenet(aux_logits=True, init_weights=True), [1.0, 0.3, 0.3]),
    ("shufflenet.arch", "shufflenet_v2_x1_0", IMAGENET, [1, 4], lambda: torchvision.models.shufflenet_v2_x1_0(), [1.0]),
    ("mobilenet_v3.arch", "mobilenet_v3_large", IMAGENET, [1, 4], lambda: torchvision.models.mobilenet_v3_large(), [1.0]),
    ("efficientnet.arch", "efficientnet_b0", IMAGENET, [1, 4], lambda: torchvision.models.efficientnet_b0(), [1.0]),
]


def outputs_of(y):
    """The outputs of a training-mode forward, main first (GoogLeNet's namedtuple too)."""
    if isinstance(y, torch.Tensor):
        return [y]
    return list(y)


def loss_of(y, target, weights):
    outs = outputs_of(y)
    assert len(outs) == len(weights), (len(outs), weights)
    loss = 0.0
    for o, w in zip(outs, weights):
        loss = loss + w * F.cross_entropy(o, target)
    return loss


def saved(model, x, target, weights, verbose=False):
    """Bytes and number of the distinct storages autograd saves in the forward and the loss,
    and what the CPU's f32 dropout masks keep beyond CUDA's bool masks (3 bytes an element)."""
    state = {t.untyped_storage().data_ptr() for t in list(model.parameters()) + list(model.buffers())}
    storages = {}
    shapes = []
    masks = []

    def dropout(m, inp, out):
        if m.p > 0:
            masks.append(out.numel())

    hooks = [m.register_forward_hook(dropout) for m in model.modules() if isinstance(m, nn.Dropout)]

    def pack(t):
        s = t.untyped_storage()
        ptr = s.data_ptr()
        if ptr not in state and s.nbytes() > 0:
            if ptr not in storages and verbose:
                shapes.append((tuple(t.shape), str(t.dtype), s.nbytes()))
            storages[ptr] = max(storages.get(ptr, 0), s.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_of(model(x), target, weights)
    del loss
    for h in hooks:
        h.remove()
    if verbose:
        for sh in shapes:
            print("   ", sh)
    return sum(storages.values()), len(storages), 3 * sum(masks)


def peak(model, x, target, weights):
    """The most tensor memory live at once in one training step, from the profiler."""
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4, foreach=True)
    for p in model.parameters():
        opt.state[p]["momentum_buffer"] = torch.zeros_like(p)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True, record_shapes=True,
                 with_stack=True) as prof:
        opt.zero_grad(set_to_none=True)
        loss_of(model(x), target, weights).backward()
        opt.step()
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "memory.raw.json")
        prof.export_memory_timeline(path, device="cpu")
        with open(path) as f:
            _, sizes = json.load(f)
    return max(sum(s) for s in sizes)


def grouped_excess(seen):
    """FlopCounterMode's weight-gradient count of each grouped convolution `(module, input
    shape)`, alone, minus the 2 FLOPs per multiply-add it does (0 where torch counts grouped
    weight gradients right)."""
    excess = 0
    for m, shape in seen:
        conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                         m.dilation, m.groups, bias=False, device="meta")
        xin = torch.empty(shape, device="meta")  # no gradient: the weight's only
        y = conv(xin)
        with FlopCounterMode(display=False) as fc:
            y.sum().backward()
        macs = y.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        excess += fc.get_total_flops() - 2 * macs
    return excess


def flops(make, shape, batch, weights):
    """FlopCounterMode's forward (with the loss) and backward counts, on the meta device, and
    the grouped convolutions' excess."""
    with torch.device("meta"):
        model = make()
    model.train()
    x = torch.empty([batch] + shape, device="meta")
    target = torch.zeros(batch, dtype=torch.long, device="meta")
    grouped = []

    def hook(m, inp, out):
        if m.groups > 1:
            grouped.append((m, tuple(inp[0].shape)))

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with FlopCounterMode(display=False) as fc:
        loss = loss_of(model(x), target, weights)
    forward = fc.get_total_flops()
    for h in hooks:
        h.remove()
    with FlopCounterMode(display=False) as fc:
        loss.backward()
    backward = fc.get_total_flops()
    with torch.device("meta"):
        excess = grouped_excess(grouped)
    return forward, backward, excess


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    verbose = "--verbose" in sys.argv
    out = args[0] if args else "training_cost"
    only = set(args[1:])
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    began = time.time()
    cases = []
    for file, network, shape, batches, make, weights in CASES:
        if only and network not in only:
            continue
        start = time.time()
        model = make()
        model.train()
        params = sum(p.numel() for p in model.parameters())
        for batch in batches:
            x = torch.randn([batch] + shape)
            target = torch.randint(0, 10, (batch,))
            if verbose:
                print(f"{network} at batch {batch}:")
            nbytes, tensors, dropout = saved(model, x, target, weights, verbose)
            # FLOPs and the peak at the largest batch only (the counts are per sample times
            # the batch; the peak is the costly measurement).
            last = batch == batches[-1]
            fwd, bwd, excess = flops(make, shape, batch, weights) if last else (None, None, None)
            top = peak(model, x, target, weights) if last else None
            cases.append({
                "file": f"architectures/{file}",
                "network": network,
                "input": shape,
                "batch_size": batch,
                "params": params,
                "saved_bytes": nbytes,
                "saved_tensors": tensors,
                "cpu_dropout_excess": dropout,
                "peak_bytes": top,
                "forward_flops": fwd,
                "backward_flops": bwd,
                "grouped_weight_grad_excess": excess,
            })
            text = f"{network} batch {batch}: saved {nbytes / 2**20:.1f} MiB in {tensors} tensors"
            if last:
                text += (f", FLOPs forward {fwd / 1e9:.3f} G, backward {bwd / 1e9:.3f} G "
                         f"(grouped excess {excess / 1e9:.3f} G), peak {top / 2**20:.1f} MiB")
            print(text)
        print(f"   ({time.time() - start:.1f} s)")
    with open(os.path.join(out, "training_cost.json"), "w") as f:
        json.dump({"torch": torch.__version__, "cases": cases}, f, indent=1)
    print(f"{len(cases)} cases in {time.time() - began:.0f} s")


if __name__ == "__main__":
    main()
