#!/usr/bin/env python3
"""The GPU check's Python half (scripts/gpu-check.sh runs it; docs/training.md says how).

    python3 gpu_check.py run OUTDIR --archc BIN --zoo DIR [--cpu-smoke]
    python3 gpu_check.py same-as-torchvision

`run` (on the GPU machine, from the packed folder; needs torch only, no torchvision, numpy or
safetensors):

1. parity: four networks (scripts/gpu_nets.py: cifar_resnet20, resnet18, resnet50_tv and the
   branching densenet121) with seeded weights and batch norm statistics, their eval-mode output
   from torch on the GPU against `archc forward --device cuda:0` with the same weights;
2. training: cifar_resnet20 (batch 128, 300 steps) and resnet50_tv (batch 256, 3x224x224, 50
   steps) on synthetic data with `archc train --device cuda:0`, in f32 and bf16, contiguous and
   channels-last; the same steps in PyTorch eager on the same GPU, in f32 and with autocast
   (bf16), contiguous and channels-last; images/s of each;
3. with several GPUs, cifar_resnet20 data-parallel over all of them (`--devices`).

Into OUTDIR: gpu-check.json (everything measured), gpu.md (the tables for docs/results/gpu.md)
and gpu-check.log. A part that fails is recorded as failed and the others still run; the exit
status is 1 when a parity check or a run failed.

`--cpu-smoke` runs every step with tiny sizes on the CPU (torch on the CPU, archc on
libtorch-cpu), so that `gpu-check.sh prepare` exercises every command line, path and writer here.

`same-as-torchvision` (where torchvision is installed) checks that gpu_nets.py's networks have
torchvision's state-dict names and shapes and give its outputs.
"""

import argparse
import ctypes
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_nets  # noqa: E402

START = time.time()
LOG = None


def log(*parts):
    line = " ".join(str(p) for p in parts)
    print(line, flush=True)
    if LOG is not None:
        LOG.write(line + "\n")
        LOG.flush()


# --- safetensors without the safetensors package (its format: an 8-byte little-endian header
# length, a JSON header, the raw little-endian data).

DTYPES = {torch.float32: "F32", torch.int64: "I64"}
TORCH_OF = {v: k for k, v in DTYPES.items()}


def save_safetensors(tensors, path):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        n = t.numel() * t.element_size()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        blobs.append(ctypes.string_at(t.data_ptr(), n) if n else b"")
        offset += n
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        dtype = TORCH_OF[h["dtype"]]
        raw = bytearray(data[8 + n + a : 8 + n + b])
        out[name] = torch.frombuffer(raw, dtype=dtype).reshape(h["shape"]) if raw else torch.zeros(h["shape"], dtype=dtype)
    return out


# --- reference weights


def calibrate_bn(model, g, shape):
    """Batch norm scales in [0.5, 1.5), shifts near 0, running statistics those of random inputs
    (train-mode batches), moved off them a little so that loading them matters."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in bns:
        c = m.num_features
        with torch.no_grad():
            m.weight.copy_(torch.rand(c, generator=g) + 0.5)
            m.bias.copy_(torch.randn(c, generator=g) * 0.1)
        m.momentum = None
        m.reset_running_stats()
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn([4] + shape, generator=g))
    for m in bns:
        c = m.num_features
        m.momentum = 0.1
        with torch.no_grad():
            m.running_var.mul_(torch.rand(c, generator=g) * 0.4 + 0.8)
            m.running_mean.add_(torch.randn(c, generator=g) * 0.1 * m.running_var.sqrt())
    model.eval()


def archc(args, cmd, timeout):
    full = [args.archc] + cmd
    log("$ " + " ".join(full))
    t = time.time()
    p = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    for line in (p.stdout + p.stderr).splitlines()[-15:]:
        log("  | " + line)
    if p.returncode != 0:
        raise RuntimeError(f"archc exited {p.returncode}")
    return time.time() - t


def parity(args, dev, work):
    results = []
    smoke = args.cpu_smoke
    for seed, (name, (file, network, make, _)) in enumerate(gpu_nets.NETWORKS.items()):
        r = {"network": name}
        results.append(r)
        try:
            shape = [3, 32, 32] if (name == "cifar_resnet20" or smoke) else [3, 224, 224]
            batch = 2 if smoke else 8
            torch.manual_seed(100 + seed)
            g = torch.Generator().manual_seed(200 + seed)
            model = make()
            calibrate_bn(model, g, shape)
            x = torch.randn([batch] + shape, generator=g)
            weights = os.path.join(work, f"{name}.safetensors")
            save_safetensors(model.state_dict(), weights)
            save_safetensors({"input": x}, os.path.join(work, f"{name}.in.safetensors"))
            model = model.to(dev)
            with torch.no_grad():
                want = model(x.to(dev)).float().cpu()
            out = os.path.join(work, f"{name}.out.safetensors")
            r["archc_s"] = round(
                archc(
                    args,
                    [
                        "forward", os.path.join(args.zoo, file), "--network", network,
                        "--weights", weights, "--input", os.path.join(work, f"{name}.in.safetensors"),
                        "--output", out, "--device", args.archc_device,
                    ],
                    300,
                ),
                2,
            )
            got = load_safetensors(out)["output"]
            diff = (got - want).abs().max().item()
            scale = max(1.0, want.abs().max().item())
            r.update(
                input=[batch] + shape,
                max_abs_diff=diff,
                max_abs_output=want.abs().max().item(),
                relative=diff / scale,
                tolerance=args.tolerance,
                ok=diff / scale <= args.tolerance,
            )
        except Exception as e:  # recorded, the other checks still run
            r.update(ok=False, error=str(e))
        log(f"parity {name}: {r}")
    return results


def rows_images_per_s(run):
    rows = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl")) if line.strip()]
    rates = [r["images_per_s"] for r in rows if r.get("images_per_s")]
    # The first interval holds the start-up (cuDNN's choice of algorithms, allocations).
    steady = rates[1:] if len(rates) > 1 else rates
    return (sum(steady) / len(steady)) if steady else None, len(rows)


def archc_train(args, work, case, precision, memory_format, devices=None):
    run = os.path.join(work, f"run-{case['name']}-{precision}-{memory_format}-{len(devices or [0])}")
    shutil.rmtree(run, ignore_errors=True)
    cmd = [
        "train", os.path.join(args.zoo, case["file"]), "--network", case["network"],
        "--data", f"synthetic:{case['images']}", "--out", run,
        "--iterations", str(case["steps"]), "--batch-size", str(case["batch"]),
        "--no-augment", "--val-fraction", "0", "--log-every", str(case["log_every"]),
        "--eval-every", str(case["steps"]), "--progress", "lines",
        "--precision", precision, "--memory-format", memory_format,
    ]
    if case.get("input"):
        cmd += ["--input", "x".join(map(str, case["input"]))]
    if devices:
        cmd += ["--devices", ",".join(devices)]
    else:
        cmd += ["--device", args.archc_device]
    wall = archc(args, cmd, 600)
    ips, rows = rows_images_per_s(run)
    return {"wall_s": round(wall, 2), "images_per_s": ips, "rows": rows}


def torch_train(case, dev, precision, memory_format):
    torch.manual_seed(0)
    model = case["make"]().to(dev)
    cl = memory_format == "channels-last"
    if cl:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    shape = [case["batch"]] + (case.get("input") or case["shape"])
    x = torch.rand(shape, device=dev)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, case["classes"], [case["batch"]], device=dev)
    loss_fn = nn.CrossEntropyLoss()
    device_type = "cuda" if dev.type == "cuda" else "cpu"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    model.train()
    warm = case["log_every"]  # as archc's first metric row, left out
    t0 = time.time()
    for _ in range(warm):
        step()
    sync()
    t1 = time.time()
    for _ in range(case["steps"] - warm):
        step()
    sync()
    t2 = time.time()
    n = (case["steps"] - warm) * case["batch"]
    return {"wall_s": round(t2 - t0, 2), "images_per_s": n / (t2 - t1) if t2 > t1 else None}


def cases(smoke):
    if smoke:
        return [
            dict(name="cifar_resnet20", file="cifar.arch", network="cifar_resnet20", make=lambda: gpu_nets.CifarResNet(3),
                 shape=[3, 32, 32], classes=10, batch=4, steps=2, log_every=1, images=16),
            dict(name="resnet50_tv", file="resnet.arch", network="resnet50_tv", make=gpu_nets.resnet50,
                 shape=[3, 224, 224], input=[3, 32, 32], classes=1000, batch=2, steps=2, log_every=1, images=8),
        ]
    return [
        dict(name="cifar_resnet20", file="cifar.arch", network="cifar_resnet20", make=lambda: gpu_nets.CifarResNet(3),
             shape=[3, 32, 32], classes=10, batch=128, steps=300, log_every=50, images=1280),
        dict(name="resnet50_tv", file="resnet.arch", network="resnet50_tv", make=gpu_nets.resnet50,
             shape=[3, 224, 224], classes=1000, batch=256, steps=50, log_every=10, images=2560),
    ]


VARIANTS = [("f32", "contiguous"), ("f32", "channels-last"), ("bf16", "contiguous"), ("bf16", "channels-last")]


def training(args, dev, work):
    results = []
    for case in cases(args.cpu_smoke):
        for precision, memory_format in VARIANTS:
            for who in ("archc", "pytorch"):
                r = {"network": case["name"], "batch": case["batch"], "steps": case["steps"], "by": who,
                     "precision": precision, "memory_format": memory_format}
                results.append(r)
                if time.time() - START > args.budget_s:
                    r.update(ok=False, error=f"skipped: past the time budget of {args.budget_s} s")
                    log(f"train {r}")
                    continue
                try:
                    if who == "archc":
                        r.update(archc_train(args, work, case, precision, memory_format))
                    else:
                        r.update(torch_train(case, dev, precision, memory_format))
                    r["ok"] = True
                except Exception as e:
                    r.update(ok=False, error=str(e))
                log(f"train {r}")
    return results


def data_parallel(args, work, count):
    if count < 2:
        return None
    case = cases(args.cpu_smoke)[0]
    case = dict(case, batch=case["batch"] * count)
    names = [args.archc_device.replace(":0", f":{i}") if not args.cpu_smoke else "libtorch-cpu" for i in range(count)]
    r = {"network": case["name"], "devices": names, "batch": case["batch"], "steps": case["steps"]}
    try:
        r.update(archc_train(args, work, case, "f32", "contiguous", devices=names))
        r["ok"] = True
    except Exception as e:
        r.update(ok=False, error=str(e))
    log(f"data-parallel {r}")
    return r


def fmt(v, digits=0):
    return "–" if v is None else f"{v:,.{digits}f}"


def markdown(report):
    env = report["environment"]
    lines = [
        f"GPU check of {report['date']} on {env['device_name']} ({env['device_count']} device(s)); torch {env['torch']} "
        f"(CUDA {env['cuda']}); {env['archc']}; measured by `scripts/gpu-check.sh run`"
        + (" **in its CPU smoke mode: not GPU figures**" if report["cpu_smoke"] else "") + ".",
        "",
        "### CUDA parity (eval-mode logits, archc forward against torch on the same device)",
        "",
        "| network | input | max abs diff | max abs output | relative | tolerance | ok |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in report["parity"]:
        if "max_abs_diff" in r:
            lines.append(
                f"| {r['network']} | {'x'.join(map(str, r['input']))} | {r['max_abs_diff']:.2e} | "
                f"{r['max_abs_output']:.3g} | {r['relative']:.2e} | {r['tolerance']:.0e} | {'yes' if r['ok'] else '**no**'} |"
            )
        else:
            lines.append(f"| {r['network']} | – | – | – | – | – | **failed**: {r.get('error', '')} |")
    lines += [
        "",
        "### Training throughput (synthetic data; images/s after the first metric interval)",
        "",
        "| network | batch | steps | by | precision | memory format | images/s | wall s |",
        "|---|---:|---:|---|---|---|---:|---:|",
    ]
    for r in report["training"]:
        v = r.get("images_per_s")
        ips = fmt(v, 1 if v is not None and v < 100 else 0) if r.get("ok") else f"**failed**: {r.get('error', '')}"
        lines.append(
            f"| {r['network']} | {r['batch']} | {r['steps']} | {r['by']} | {r['precision']} | {r['memory_format']} | "
            f"{ips} | {fmt(r.get('wall_s'), 1)} |"
        )
    dp = report.get("data_parallel")
    if dp:
        lines += [
            "",
            f"Data-parallel: {dp['network']} on {','.join(dp['devices'])}, batch {dp['batch']}: "
            + (f"{fmt(dp.get('images_per_s'))} images/s" if dp.get("ok") else f"failed: {dp.get('error')}"),
        ]
    lines += [
        "",
        "archc's images/s include its data pipeline (synthetic images made on the CPU each step); "
        "PyTorch's train on one batch kept on the device. bf16 is archc's `--precision bf16` and "
        "PyTorch's `torch.autocast(dtype=torch.bfloat16)`; channels-last is `--memory-format "
        "channels-last` and `torch.channels_last`.",
    ]
    return "\n".join(lines) + "\n"


def run(args):
    global LOG
    os.makedirs(args.outdir, exist_ok=True)
    LOG = open(os.path.join(args.outdir, "gpu-check.log"), "w")
    smoke = args.cpu_smoke
    dev = torch.device("cpu" if smoke else "cuda:0")
    args.archc_device = "libtorch-cpu" if smoke else "cuda:0"
    if args.tolerance is None:
        # f32 on the CPU: float rounding in another order. On the GPU, cuDNN's convolutions
        # may run in TF32 (10 mantissa bits; LibTorch's default for cuDNN, the same library
        # on both sides): about 1e-3 relative per layer, so 1e-2 of the logits' scale.
        args.tolerance = 1e-4 if smoke else 1e-2
    if not smoke and not torch.cuda.is_available():
        log("no CUDA device visible to torch: nothing to measure")
        return 2
    p = subprocess.run([args.archc, "--version"], capture_output=True, text=True)
    count = 2 if smoke else torch.cuda.device_count()
    env = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device_name": "CPU (smoke)" if smoke else torch.cuda.get_device_name(0),
        "device_count": count,
        "archc": p.stdout.strip(),
        "python": platform.python_version(),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
    }
    log(f"environment: {env}")
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu_smoke": smoke, "environment": env}
    with tempfile.TemporaryDirectory() as work:
        report["parity"] = parity(args, dev, work)
        report["training"] = training(args, dev, work)
        report["data_parallel"] = data_parallel(args, work, count)
    report["elapsed_s"] = round(time.time() - START, 1)
    with open(os.path.join(args.outdir, "gpu-check.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(args.outdir, "gpu.md"), "w") as f:
        f.write(markdown(report))
    failed = [r for r in report["parity"] + report["training"] if not r.get("ok")]
    if report["data_parallel"] and not report["data_parallel"].get("ok"):
        failed.append(report["data_parallel"])
    log(f"done in {report['elapsed_s']} s: {len(failed)} failed")
    return 1 if failed else 0


def same_as_torchvision():
    import torchvision

    bad = 0
    for name, (_, _, make, tv) in gpu_nets.NETWORKS.items():
        if tv is None:
            continue
        ours, theirs = make().eval(), getattr(torchvision.models, tv)().eval()
        a = {k: v.shape for k, v in ours.state_dict().items()}
        b = {k: v.shape for k, v in theirs.state_dict().items()}
        if a != b:
            print(f"{name}: state dicts differ: {sorted(set(a.items()) ^ set(b.items()))[:5]}")
            bad += 1
            continue
        g = torch.Generator().manual_seed(0)
        calibrate_bn(theirs, g, [3, 32, 32])
        ours.load_state_dict(theirs.state_dict())
        x = torch.randn([2, 3, 32, 32], generator=g)
        with torch.no_grad():
            d = (ours(x) - theirs(x)).abs().max().item()
        print(f"{name}: torchvision's {tv} names and shapes; outputs differ by {d:.2e}")
        if not d <= 1e-5:
            bad += 1
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("outdir")
    r.add_argument("--archc", required=True)
    r.add_argument("--zoo", required=True)
    r.add_argument("--cpu-smoke", action="store_true")
    r.add_argument("--tolerance", type=float)
    r.add_argument("--budget-s", type=float, default=420.0, help="skip the training runs left after this many seconds")
    sub.add_parser("same-as-torchvision")
    args = ap.parse_args()
    if args.cmd == "run":
        return run(args)
    return same_as_torchvision()


if __name__ == "__main__":
    sys.exit(main())
