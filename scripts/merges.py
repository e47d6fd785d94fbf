#!/usr/bin/env python3
"""Reference values for archc's merges (runtime/tests/merges.rs), written with
torch.nn.functional: the network `branches` of runtime/tests/fixtures/branches.arch (four
branches concatenated with an identity, a squeeze-and-excitation gate as a vector, a channel
split with a shuffle, an elementwise max, a three-way add, a C×1×1 gate, and an auxiliary
head), on seeded weights and a seeded input x [2, 3, 8, 8]:

    OUT/merges_weights.safetensors   every parameter by archc's name (as `archc lower` prints)
    OUT/merges.safetensors           x, u, v, and y (main output), aux (auxiliary output),
                                     dx: the input gradient of sum(y * u) + 0.5 * sum(aux * v)

Needs torch:  python3 scripts/merges.py OUT_DIR
"""

import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

# (name, out, in, kernel, groups) of every conv; (name, out, in) of every fc.
CONVS = [
    ("stem.conv1", 8, 3, 3, 1),
    ("s1.0.b1.conv1", 4, 8, 1, 1),
    ("s1.0.b2.conv1", 4, 8, 1, 1),
    ("s1.0.b2.conv2", 4, 4, 3, 1),
    ("s1.0.b3.conv1", 4, 8, 1, 1),
    ("s3.conv1", 16, 20, 1, 1),
    ("s3.0.right.conv1", 8, 8, 1, 1),
    ("s3.0.right.conv2", 8, 8, 3, 8),
    ("s3.0.right.conv3", 8, 8, 1, 1),
    ("s4.0.a.conv1", 16, 16, 3, 1),
    ("s4.0.b.conv1", 16, 16, 1, 1),
    ("s4.1.a.conv1", 16, 16, 3, 1),
    ("s4.1.b.conv1", 16, 16, 1, 1),
    ("s4.1.gate.conv1", 16, 16, 1, 1),
]
FCS = [
    ("s2.0.excite.fc1", 5, 20),
    ("s2.0.excite.fc2", 20, 5),
    ("aux.fc1", 5, 20),
    ("head.fc1", 5, 16),
]


def main(out):
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(20160621)
    w = {}
    for name, o, i, k, groups in CONVS:
        fan_in = i // groups * k * k
        w[f"{name}.weight"] = torch.randn(o, i // groups, k, k, generator=g) / fan_in**0.5
        w[f"{name}.bias"] = torch.randn(o, generator=g) * 0.1
    for name, o, i in FCS:
        w[f"{name}.weight"] = torch.randn(o, i, generator=g) / i**0.5
        w[f"{name}.bias"] = torch.randn(o, generator=g) * 0.1

    def conv(name, x, groups=1):
        k = w[f"{name}.weight"].shape[-1]
        return F.conv2d(x, w[f"{name}.weight"], w[f"{name}.bias"], padding=k // 2, groups=groups)

    def fc(name, x):
        return F.linear(x, w[f"{name}.weight"], w[f"{name}.bias"])

    x = torch.randn(2, 3, 8, 8, generator=g).requires_grad_()
    h = F.relu(conv("stem.conv1", x))
    # s1: concat of four branches, the last the identity
    b1 = F.relu(conv("s1.0.b1.conv1", h))
    b2 = F.relu(conv("s1.0.b2.conv2", F.relu(conv("s1.0.b2.conv1", h))))
    b3 = F.relu(conv("s1.0.b3.conv1", F.max_pool2d(h, 3, 1, 1)))
    h = torch.cat([b1, b2, b3, h], 1)
    # s2: squeeze-and-excitation with a vector gate
    s = torch.sigmoid(fc("s2.0.excite.fc2", F.relu(fc("s2.0.excite.fc1", h.mean((2, 3))))))
    h = h * s[:, :, None, None]
    aux = fc("aux.fc1", h.mean((2, 3)))
    # s3: split, transform one half, concat, shuffle
    h = F.relu(conv("s3.conv1", h))
    left, right = h.chunk(2, 1)
    r = F.relu(conv("s3.0.right.conv1", right))
    r = conv("s3.0.right.conv2", r, groups=8)
    r = F.relu(conv("s3.0.right.conv3", r))
    h = torch.cat([left, r], 1)
    n, c, hh, ww = h.shape
    h = h.view(n, 2, c // 2, hh, ww).transpose(1, 2).reshape(n, c, hh, ww)
    # s4: max of two branches; then a three-way add with the identity and a C×1×1 gate
    h = torch.maximum(F.relu(conv("s4.0.a.conv1", h)), F.relu(conv("s4.0.b.conv1", h)))
    h = F.relu(conv("s4.1.a.conv1", h)) + F.relu(conv("s4.1.b.conv1", h)) + h
    h = h * torch.sigmoid(conv("s4.1.gate.conv1", F.adaptive_avg_pool2d(h, 1)))
    y = fc("head.fc1", h.mean((2, 3)))

    u = torch.randn(y.shape, generator=g)
    v = torch.randn(aux.shape, generator=g)
    ((y * u).sum() + 0.5 * (aux * v).sum()).backward()
    save_file({k: t.contiguous() for k, t in w.items()}, os.path.join(out, "merges_weights.safetensors"))
    save_file(
        {
            "x": x.detach().contiguous(),
            "u": u,
            "v": v,
            "y": y.detach().contiguous(),
            "aux": aux.detach().contiguous(),
            "dx": x.grad.contiguous(),
        },
        os.path.join(out, "merges.safetensors"),
    )
    print(f"merges.py: wrote {out}/merges.safetensors and merges_weights.safetensors")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "parity")
