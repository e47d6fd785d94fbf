#!/usr/bin/env python3
"""Whole-process benchmarks of archc against what its users run instead, on one machine.

    python3 bench/run.py                      # build archc (release), set up bench/.venv, measure
    python3 bench/run.py --archc-tch PATH     # also LibTorch: an archc built with --features tch

Two comparisons, the contenders interleaved round-robin (A, B, C, A, B, C, ...) so that a
machine whose load changes during the run treats them alike; medians over the runs:

1. Sizing ResNet-152: `archc report architectures/resnet.arch -n resnet152` against
   `torchinfo.summary(torchvision.models.resnet152(), (1, 3, 224, 224))` and fvcore's
   `FlopCountAnalysis(model, x).total()`, each a whole process (what a user waits for); for
   the Python tools also the call alone (no `import torch`, no model construction).
2. A training step of cifar_resnet20 at batch 128 (forward, backward, SGD with momentum 0.9
   and weight decay 1e-4): `archc train --data synthetic --no-augment` on burn-flex (and on
   LibTorch CPU with --archc-tch), images/s from its metrics.csv after the warm-up steps,
   against PyTorch eager (bench/torch_step.py) with the same thread count; and each process's
   peak memory (max RSS).

The Python tools run in bench/.venv (git-ignored), made on first use: torch 2.9.0 and
torchvision 0.24.0 are borrowed from ARCHC_TORCH_VENV when that venv has them (a .pth file
points at its site-packages), else installed from PyPI; then torchinfo, fvcore and safetensors.
Prints a Markdown summary; --json writes every measurement.
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "bench", ".venv")
VPY = os.path.join(VENV, "bin", "python")
TORCH = ["torch==2.9.0", "torchvision==0.24.0"]
TOOLS = ["torchinfo==1.8.0", "fvcore==0.1.5.post20221221", "safetensors", "numpy"]


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def has_torch(python):
    return subprocess.run([python, "-c", "import torch, torchvision"],
                          capture_output=True).returncode == 0


def setup_venv():
    if not os.path.exists(VPY):
        log(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    if not has_torch(VPY):
        borrowed = os.environ.get("ARCHC_TORCH_VENV")
        bpy = borrowed and os.path.join(borrowed, "bin", "python")
        if bpy and os.path.exists(bpy) and has_torch(bpy):
            out = subprocess.run([bpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
            mine = subprocess.run([VPY, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip()
            log(f"borrowing torch from {borrowed}")
            with open(os.path.join(mine, "archc-borrowed-torch.pth"), "w") as f:
                f.write(out + "\n")
        else:
            log("installing torch and torchvision from PyPI (large download)")
            subprocess.run([VPY, "-m", "pip", "install", "--quiet", *TORCH], check=True)
    if subprocess.run([VPY, "-c", "import torchinfo, fvcore, safetensors"],
                      capture_output=True).returncode != 0:
        log("installing torchinfo, fvcore, safetensors")
        subprocess.run([VPY, "-m", "pip", "install", "--quiet", *TOOLS], check=True)


def build_archc():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    log("cargo build --release")
    subprocess.run(["cargo", "build", "--release", "--bin", "archc"], cwd=ROOT, check=True)
    return os.path.join(target, "release", "archc")


def run(cmd, env=None):
    """Run `cmd`; return wall seconds, max RSS (MiB), user and system CPU seconds, its output."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=out, stderr=err)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, etext = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{etext[-3000:]}")
    return {"wall_s": wall, "max_rss_mib": ru.ru_maxrss / 1024, "user_s": ru.ru_utime,
            "sys_s": ru.ru_stime, "stdout": text, "stderr": etext}


def last_json(text):
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON line in:\n{text[-2000:]}")


def images_per_s(run_dir, warmup):
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        rows = f.read().splitlines()
    head = rows[0].split(",")
    it, ips = head.index("iteration"), head.index("images_per_s")
    vals = [float(r.split(",")[ips]) for r in rows[1:] if int(r.split(",")[it]) > warmup]
    return vals


def load():
    return os.getloadavg()


def med(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archc", help="archc binary (default: cargo build --release)")
    ap.add_argument("--archc-tch", help="archc built with --features tch (adds LibTorch CPU)")
    ap.add_argument("--archc-tch-baseline", metavar="PATH",
                    help="a second tch build to compare with, e.g. one from before a change")
    ap.add_argument("--skip-flex", action="store_true", help="leave burn-flex out of the training runs")
    ap.add_argument("--report-runs", type=int, default=10)
    ap.add_argument("--train-runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2, help="training steps not timed")
    ap.add_argument("--steps", type=int, default=5, help="training steps timed per run")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--flex-untuned", action="store_true",
                    help="also burn-flex with glibc's malloc defaults (runtime/src/malloc.rs off)")
    ap.add_argument("--skip-report", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--json", help="write every measurement here")
    ap.add_argument("--summarize", metavar="JSON", help="print the summary of an earlier --json run")
    a = ap.parse_args()
    if a.summarize:
        with open(a.summarize) as f:
            res = json.load(f)
        for k, v in res.get("args", {}).items():
            setattr(a, k, v)
        print(summary(res, a))
        return

    setup_venv()
    archc = a.archc or build_archc()
    torch_lib = subprocess.run(
        [VPY, "-c", "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    versions = subprocess.run(
        [VPY, "-c", "import torch, torchvision, torchinfo, fvcore; "
                    "print(torch.__version__, torchvision.__version__, torchinfo.__version__, fvcore.__version__)"],
        capture_output=True, text=True, check=True).stdout.split()
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
                 platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    res = {"machine": {"cpu": model, "cpus": os.cpu_count(), "threads": a.threads,
                       "versions": dict(zip(["torch", "torchvision", "torchinfo", "fvcore"], versions)),
                       "archc_commit": commit, "load_start": load()}}
    threads_env = {"RAYON_NUM_THREADS": str(a.threads), "OMP_NUM_THREADS": str(a.threads),
                   "MKL_NUM_THREADS": str(a.threads)}

    if not a.skip_report:
        contenders = {
            "archc": [archc, "report", "architectures/resnet.arch", "-n", "resnet152"],
            "torchinfo": [VPY, "bench/report_py.py", "torchinfo"],
            "fvcore": [VPY, "bench/report_py.py", "fvcore"],
        }
        runs = {k: [] for k in contenders}
        for r in range(a.report_runs + 1):  # the first round warms the file cache, not counted
            for name, cmd in contenders.items():
                m = run(cmd, threads_env)
                if name != "archc":
                    m.update(last_json(m["stderr"]))
                m.pop("stderr")
                m.pop("stdout")
                if r > 0:
                    runs[name].append(m)
            log(f"report round {r}/{a.report_runs}, load {load()[0]:.2f}")
        res["report"] = runs

    if not a.skip_train:
        tmp = tempfile.mkdtemp(prefix="archc-bench-")
        iters = a.warmup + a.steps
        # 6 batches of training images and a test split of 64: the end-of-run evaluation is small.
        data = f"synthetic:{a.batch * 6 // 5 * 5}"

        def archc_train(binary, device, env):
            def go(r):
                out = os.path.join(tmp, f"{device}-{len(env)}-{r}")
                m = run([binary, "train", "architectures/cifar.arch", "-n", "cifar_resnet20",
                         "--data", data, "--no-augment", "--val-fraction", "0", "--batch-size",
                         str(a.batch), "--iterations", str(iters), "--log-every", "1",
                         "--eval-every", str(10 * iters), "--progress", "lines", "--device", device,
                         "--out", out], env)
                m["images_per_s"] = images_per_s(out, a.warmup)
                m.pop("stdout")
                m.pop("stderr")
                shutil.rmtree(out, ignore_errors=True)
                return m
            return go

        def torch_eager(r):
            m = run([VPY, "bench/torch_step.py", "--batch", str(a.batch), "--threads", str(a.threads),
                     "--warmup", str(a.warmup), "--steps", str(a.steps)], threads_env)
            m.update(last_json(m.pop("stdout")))
            m.pop("stderr")
            return m

        contenders = {}
        if not a.skip_flex:
            contenders["archc burn-flex"] = archc_train(archc, "cpu", threads_env)
        if a.flex_untuned and not a.skip_flex:
            # Any GLIBC_TUNABLES makes archc leave malloc alone; this one is glibc's default.
            env = dict(threads_env, GLIBC_TUNABLES="glibc.malloc.check=0")
            contenders["archc burn-flex, malloc untuned"] = archc_train(archc, "cpu", env)
        if a.archc_tch:
            env = dict(threads_env)
            env["LD_LIBRARY_PATH"] = torch_lib + ":" + os.environ.get("LD_LIBRARY_PATH", "")
            contenders["archc LibTorch CPU"] = archc_train(a.archc_tch, "libtorch-cpu", env)
            if a.archc_tch_baseline:
                contenders["archc LibTorch CPU, baseline"] = archc_train(
                    a.archc_tch_baseline, "libtorch-cpu", env)
        contenders["PyTorch eager"] = torch_eager
        runs = {k: [] for k in contenders}
        for r in range(a.train_runs):
            for name, go in contenders.items():
                runs[name].append(go(r))
            log(f"train round {r + 1}/{a.train_runs}, load {load()[0]:.2f}")
        res["train"] = runs
        shutil.rmtree(tmp, ignore_errors=True)

    res["machine"]["load_end"] = load()
    res["args"] = {k: getattr(a, k) for k in ("report_runs", "train_runs", "warmup", "steps", "batch", "threads")}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    print(summary(res, a))


def summary(res, a):
    m = res["machine"]
    out = [f"machine: {m['cpu']}, {m['cpus']} CPUs, {m['threads']} threads; archc {m['archc_commit']}; "
           f"torch {m['versions'].get('torch')}, torchvision {m['versions'].get('torchvision')}, "
           f"torchinfo {m['versions'].get('torchinfo')}, fvcore {m['versions'].get('fvcore')}",
           f"load average (1, 5, 15 min) at start {tuple(round(x, 2) for x in m['load_start'])}, "
           f"at end {tuple(round(x, 2) for x in m['load_end'])}", ""]
    if "report" in res:
        r = res["report"]
        a_wall = med([x["wall_s"] for x in r["archc"]])
        out += [f"ResNet-152 report, {a.report_runs} runs each, medians:", "",
                "| tool | whole process | import | model built | the call alone | max RSS | whole process vs archc | call alone vs archc |",
                "|---|---:|---:|---:|---:|---:|---:|---:|",
                f"| `archc report` | {a_wall * 1e3:.1f} ms | | | | {med([x['max_rss_mib'] for x in r['archc']]):.0f} MiB | 1 | |"]
        for name in ("torchinfo", "fvcore"):
            xs = r[name]
            w, c = med([x["wall_s"] for x in xs]), med([x["call_s"] for x in xs])
            out.append(f"| {name} | {w * 1e3:.0f} ms | {med([x['import_s'] for x in xs]) * 1e3:.0f} ms | "
                       f"{med([x['model_s'] for x in xs]) * 1e3:.0f} ms | {c * 1e3:.0f} ms | "
                       f"{med([x['max_rss_mib'] for x in xs]):.0f} MiB | {w / a_wall:.0f}x | {c / a_wall:.0f}x |")
        out.append("")
    if "train" in res:
        t = res["train"]
        rates, best = {}, {}
        for name, xs in t.items():
            if "images_per_s" in xs[0]:
                per_step = [v for x in xs for v in x["images_per_s"]]
            else:
                per_step = [a.batch / s for x in xs for s in x["step_s"]]
            rates[name], best[name] = med(per_step), max(per_step)
        ref, ref_best = rates.get("PyTorch eager"), best.get("PyTorch eager")
        out += [f"cifar_resnet20 training step, batch {a.batch}, {a.threads} threads, "
                f"{a.train_runs} runs x {a.steps} steps after {a.warmup} warm-up; median and fastest step:", "",
                "| contender | images/s (median) | vs PyTorch eager | images/s (fastest step) | vs PyTorch eager | CPU busy (user+sys / wall) | max RSS |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for name, xs in t.items():
            busy = med([(x["user_s"] + x["sys_s"]) / x["wall_s"] for x in xs])
            out.append(f"| {name} | {rates[name]:.1f} | {rates[name] / ref:.2f}x | {best[name]:.1f} | "
                       f"{best[name] / ref_best:.2f}x | {busy:.2f} | {med([x['max_rss_mib'] for x in xs]):.0f} MiB |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    main()
