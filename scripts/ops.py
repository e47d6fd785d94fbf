#!/usr/bin/env python3
"""Reference values for archc's op kinds (runtime/tests/ops.rs).

Activations: for each activation archc has, PyTorch's functional form on one seeded input
x [2, 3, 5, 5] (values in [-5, 5], kept 0.05 away from the kinks at 0, ±3 and 6, where a
derivative is a convention), the output y = f(x) and the input gradient of sum(y * u) for a
seeded upstream gradient u; PReLU also its slopes' gradient. Pools: max and average pooling
with ceil_mode on p [2, 3, 8, 8], output and input gradient of sum(y * v). Channel ops on
q [2, 6, 4, 4] (and the vector r [2, 6]): layer norm over the channels (LayerNorm2d) and over
features, group norm in 2 and 3 groups (with random weight and bias, whose gradients are
written too), maxout in 2 and 3 pieces, channel shuffle in 2 and 3 groups. Spatial pyramid
pooling (`spp`) on seeded [2, 3, 14, 14] and [2, 3, 13, 13] inputs:

    OUT/ops.safetensors   x, u, NAME.y, NAME.dx (prelu.weight, prelu.dweight); p, and
                          POOL.v, POOL.y, POOL.dx for each pool case; q, r and CASE.v,
                          CASE.y, CASE.dx (CASE.weight, .bias, .dweight, .dbias) per case;
                          SPP.x, SPP.v, SPP.y, SPP.dx per pyramid case

Needs torch:  python3 scripts/ops.py OUT_DIR
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

# Pools in ceil_mode (8 -> 4 where floor mode gives 3), with and without padding.
POOLS = {
    "maxpool_k3s2_ceil": lambda x: F.max_pool2d(x, 3, 2, 0, ceil_mode=True),
    "maxpool_k3s2p1_ceil": lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
    "avgpool_k3s2_ceil": lambda x: F.avg_pool2d(x, 3, 2, 0, ceil_mode=True),
    "avgpool_k3s2p1_ceil": lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True),
}

# Pyramid pooling cases: (side of the 3-channel input, levels).
SPP = {
    "spp_7321_14": (14, (7, 3, 2, 1)),
    "spp_421_13": (13, (4, 2, 1)),
    "spp_1236_13": (13, (1, 2, 3, 6)),
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
    p = torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float32)
    tensors["p"] = p
    for name, f in POOLS.items():
        pi = p.clone().requires_grad_(True)
        y = f(pi)
        v = torch.rand(y.shape, generator=g, dtype=torch.float32) * 2 - 1
        (y * v).sum().backward()
        tensors[f"{name}.v"] = v
        tensors[f"{name}.y"] = y.detach()
        tensors[f"{name}.dx"] = pi.grad.detach()
    q = torch.randn(2, 6, 4, 4, generator=g, dtype=torch.float32) * 2 + 0.5
    r = torch.randn(2, 6, generator=g, dtype=torch.float32) * 2 + 0.5
    tensors["q"] = q
    tensors["r"] = r
    w = torch.rand(6, generator=g, dtype=torch.float32) + 0.5
    b = torch.rand(6, generator=g, dtype=torch.float32) - 0.5
    eps = 1e-5
    affine = {
        "layernorm2d": (q, lambda x, w, b: F.layer_norm(x.permute(0, 2, 3, 1), (6,), w, b, eps).permute(0, 3, 1, 2)),
        "layernorm_flat": (r, lambda x, w, b: F.layer_norm(x, (6,), w, b, eps)),
        "groupnorm2": (q, lambda x, w, b: F.group_norm(x, 2, w, b, eps)),
        "groupnorm3": (q, lambda x, w, b: F.group_norm(x, 3, w, b, eps)),
    }
    for name, (inp, f) in affine.items():
        xi = inp.clone().requires_grad_(True)
        wi = w.clone().requires_grad_(True)
        bi = b.clone().requires_grad_(True)
        y = f(xi, wi, bi)
        v = torch.rand(y.shape, generator=g, dtype=torch.float32) * 2 - 1
        (y * v).sum().backward()
        tensors.update({f"{name}.v": v, f"{name}.y": y.detach(), f"{name}.dx": xi.grad, f"{name}.weight": w.clone(),
                        f"{name}.bias": b.clone(), f"{name}.dweight": wi.grad, f"{name}.dbias": bi.grad})
    plain = {
        "maxout2": lambda x: x.view(2, 3, 2, 4, 4).amax(2),
        "maxout3": lambda x: x.view(2, 2, 3, 4, 4).amax(2),
        "shuffle2": lambda x: x.view(2, 2, 3, 4, 4).transpose(1, 2).reshape(2, 6, 4, 4),
        "shuffle3": lambda x: x.view(2, 3, 2, 4, 4).transpose(1, 2).reshape(2, 6, 4, 4),
    }
    for name, f in plain.items():
        xi = q.clone().requires_grad_(True)
        y = f(xi)
        v = torch.rand(y.shape, generator=g, dtype=torch.float32) * 2 - 1
        (y * v).sum().backward()
        tensors.update({f"{name}.v": v, f"{name}.y": y.detach(), f"{name}.dx": xi.grad})
    # Spatial pyramid pooling: adaptive max pooling per level, flattened, levels concatenated
    # in the order written (He et al. 2014); on 14x14 (the PReLU-nets' 7, 3, 2, 1: 3 does not
    # divide 14) and on 13x13 (no level but 1 divides it).
    for name, (side, levels) in SPP.items():
        s = torch.randn(2, 3, side, side, generator=g, dtype=torch.float32)
        si = s.clone().requires_grad_(True)
        y = torch.cat([F.adaptive_max_pool2d(si, b).flatten(1) for b in levels], 1)
        v = torch.rand(y.shape, generator=g, dtype=torch.float32) * 2 - 1
        (y * v).sum().backward()
        tensors.update({f"{name}.x": s, f"{name}.v": v, f"{name}.y": y.detach(), f"{name}.dx": si.grad})
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out, "ops.safetensors"))
    print(f"wrote {len(tensors)} tensors to {out}/ops.safetensors (torch {torch.__version__})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 scripts/ops.py OUT_DIR")
    main(sys.argv[1])
