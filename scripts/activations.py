#!/usr/bin/env python3
"""Reference values for archc's activations (runtime/tests/activations.rs).

For each activation archc has, PyTorch's functional form on one seeded input x [2, 3, 5, 5]
(values in [-5, 5], with exact zeros and the hard activations' corners at -3 and 3 avoided
by construction of the draw), the output y = f(x) and the input gradient of sum(y * u) for a
seeded upstream gradient u; PReLU also its slopes' gradient:

    OUT/activations.safetensors   x, u, and NAME.y, NAME.dx (and prelu.weight, prelu.dweight)

Needs torch:  python3 scripts/activations.py OUT_DIR
"""

import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ACTIVATIONS = {
    "relu": F.relu,
    "relu6": F.relu6,
    "sigmoid": torch.sigmoid,
    "hardsigmoid": F.hardsigmoid,
    "silu": F.silu,
    "hardswish": F.hardswish,
    "gelu": lambda x: F.gelu(x, approximate="none"),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "tanh": torch.tanh,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "leaky_relu_0.2": lambda x: F.leaky_relu(x, 0.2),
}


def main(out):
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(20161210)
    x = torch.rand(2, 3, 5, 5, generator=g, dtype=torch.float32) * 10 - 5
    # Keep away from the kinks (0, ±3, 6), where a derivative is a convention, not a value.
    for k in (0.0, 3.0, -3.0, 6.0):
        near = (x - k).abs() < 0.05
        x = torch.where(near, x + 0.1, x)
    u = torch.rand(2, 3, 5, 5, generator=g, dtype=torch.float32) * 2 - 1
    tensors = {"x": x, "u": u}
    for name, f in ACTIVATIONS.items():
        xi = x.clone().requires_grad_(True)
        y = f(xi)
        (y * u).sum().backward()
        tensors[f"{name}.y"] = y.detach()
        tensors[f"{name}.dx"] = xi.grad.detach()
    w = torch.tensor([0.25, -0.1, 0.6], dtype=torch.float32)
    xi = x.clone().requires_grad_(True)
    wi = w.clone().requires_grad_(True)
    y = F.prelu(xi, wi)
    (y * u).sum().backward()
    tensors["prelu.weight"] = w
    tensors["prelu.y"] = y.detach()
    tensors["prelu.dx"] = xi.grad.detach()
    tensors["prelu.dweight"] = wi.grad.detach()
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out, "activations.safetensors"))
    print(f"wrote {len(tensors)} tensors to {out}/activations.safetensors (torch {torch.__version__})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 scripts/activations.py OUT_DIR")
    main(sys.argv[1])
