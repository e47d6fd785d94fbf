#!/usr/bin/env python3
"""PyTorch eager side of bench/run.py: one process, timed training steps or forward passes.

    python bench/torch_step.py --net cifar_resnet20 --batch 128 --threads 2 --warmup 2 --steps 5
    python bench/torch_step.py --net resnet18 --input 64 --classes 1000 --batch 64 --threads 1
    python bench/torch_step.py --net mobilenet_v2 --input 96 --eval --batch 256 --steps 3

Networks (CPU, float32):
- cifar_resnet20 (cifar_resnet32, ... by --depth): scripts/parity.py's CifarResNet (option A
  shortcuts, the same network as archc's cifar_resnet20);
- resnet18: torchvision.models.resnet18(num_classes=K);
- mobilenet_v2: torchvision.models.mobilenet_v2(num_classes=K) (dropout 0.2 before the
  classifier, as archc's mobilenet_v2).

Training (the default): forward, softmax cross-entropy, backward, and torch.optim.SGD with lr
0.1, momentum 0.9, weight decay 1e-4 (the paper's recipe, archc's paper-cifar), model.train().
--eval: model.eval() forward passes under torch.no_grad(). The batches are random images made
before the clock starts (four of them, used in turn), so no data pipeline is timed. Prints one
JSON object: the per-step (or per-pass) seconds after the warm-up ones, and the parameter count.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))


def build(net, depth, classes):
    if net == "cifar_resnet20":
        from parity import CifarResNet

        return CifarResNet((depth - 2) // 6, classes)
    import torchvision

    if net == "resnet18":
        return torchvision.models.resnet18(num_classes=classes)
    if net == "mobilenet_v2":
        return torchvision.models.mobilenet_v2(num_classes=classes)
    sys.exit(f"unknown network {net}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--net", default="cifar_resnet20",
                    choices=["cifar_resnet20", "resnet18", "mobilenet_v2"])
    ap.add_argument("--depth", type=int, default=20, help="CIFAR ResNet depth (cifar_resnet20 only)")
    ap.add_argument("--input", type=int, default=32, help="image side (square, 3 channels)")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--eval", action="store_true", help="forward passes only (no grad, eval mode)")
    a = ap.parse_args()

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = build(a.net, a.depth, a.classes)
    params = sum(p.numel() for p in model.parameters())
    batches = [
        (torch.randn(a.batch, 3, a.input, a.input), torch.randint(0, a.classes, (a.batch,)))
        for _ in range(4)
    ]
    times = []
    if a.eval:
        model.eval()
        with torch.no_grad():
            for i in range(a.warmup + a.steps):
                x, _ = batches[i % len(batches)]
                t0 = time.perf_counter()
                model(x).sum().item()
                times.append(time.perf_counter() - t0)
    else:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
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
                      "params": params, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
