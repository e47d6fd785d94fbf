#!/usr/bin/env python3
"""PyTorch eager side of bench/run.py: one process, timed steps of a CIFAR ResNet.

    python bench/torch_step.py --depth 20 --batch 128 --threads 2 --warmup 2 --steps 5

Trains scripts/parity.py's CifarResNet (option A shortcuts, the same network as archc's
cifar_resnet20) on CPU: forward, softmax cross-entropy, backward, and torch.optim.SGD with
lr 0.1, momentum 0.9, weight decay 1e-4 (the paper's recipe, archc's paper-cifar). The batches
are random images made before the clock starts (four of them, used in turn), so no data
pipeline is timed. Prints one JSON object: the per-step seconds after the warm-up steps.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from parity import CifarResNet

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = CifarResNet((a.depth - 2) // 6)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    batches = [
        (torch.randn(a.batch, 3, 32, 32), torch.randint(0, 10, (a.batch,))) for _ in range(4)
    ]
    times = []
    for i in range(a.warmup + a.steps):
        x, y = batches[i % len(batches)]
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"step_s": times[a.warmup:], "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
