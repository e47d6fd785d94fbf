#!/usr/bin/env python3
"""Whole-process benchmarks of archc against what its users run instead, on one machine.

    python3 bench/run.py                      # build archc (release), set up bench/.venv, measure
    python3 bench/run.py --archc PATH --quick --skip-report      # a smoke run of a few minutes
    python3 bench/run.py --archc-tch PATH     # also LibTorch: an archc built with --features tch

Three comparisons, the contenders interleaved round-robin (A, B, C, A, B, C, ...) so that a
machine whose load changes during the run treats them alike; medians over the runs:

1. Sizing ResNet-152: `archc report architectures/resnet.arch -n resnet152` against
   `torchinfo.summary(torchvision.models.resnet152(), (1, 3, 224, 224))` and fvcore's
   `FlopCountAnalysis(model, x).total()`, each a whole process (what a user waits for); for
   the Python tools also the call alone (no `import torch`, no model construction).
2. Training steps (forward, cross-entropy, backward, SGD with momentum 0.9 and weight decay
   1e-4) of cifar_resnet20 (3x32x32, batch 128), resnet18 (3x64x64) and mobilenet_v2
   (3x96x96; batch 64 each unless --batch-for): `archc train --data synthetic --no-augment` on
   burn-flex (and on LibTorch CPU with --archc-tch), images/s of each step from its
   metrics.csv after the warm-up steps, against PyTorch eager (bench/torch_step.py).
3. Evaluation throughput (forward only, eval mode, batch 256) of the same networks: `archc
   eval` of a seeded checkpoint (made before any clock starts) on synthetic data, timed as the
   difference of two whole processes, one that evaluates 1 batch and one that evaluates 1 +
   --eval-batches batches (so process start, building the network, loading the weights and
   the first batch cancel out; archc's making of the synthetic images stays in), against
   PyTorch eager under torch.no_grad() after one warm-up pass.

Every comparison runs at each thread count of --threads (default 1 and all CPUs):
RAYON_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS and torch.set_num_threads. Each process's
peak memory (max RSS) comes from wait4.

The Python tools run in bench/.venv (git-ignored), made on first use: torch 2.9.0 and
torchvision 0.24.0 are borrowed from ARCHC_TORCH_VENV when that venv has them (a .pth file
points at its site-packages), else installed from PyPI; then, for the report comparison,
torchinfo, fvcore and safetensors. Prints a Markdown summary; --json writes every measurement.
"""

import argparse
import json
import os
import platform
import re
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

# The networks of the training and evaluation comparisons: zoo file, input side (3xHxH), the
# training batch (--batch-for overrides it).
NETS = {
    "cifar_resnet20": {"file": "architectures/cifar.arch", "side": 32, "batch": 128},
    "resnet18": {"file": "architectures/resnet.arch", "side": 64, "batch": 64},
    "mobilenet_v2": {"file": "architectures/mobilenet.arch", "side": 96, "batch": 64},
}
TORCH_NAME = "PyTorch eager"

# What --quick sets, unless given explicitly; then the full defaults.
QUICK = {"report_runs": 1, "train_runs": 1, "eval_runs": 1, "warmup": 1, "steps": 2, "eval_batches": 1}
FULL = {"report_runs": 10, "train_runs": 3, "eval_runs": 3, "warmup": 2, "steps": 5, "eval_batches": 3}


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def has_torch(python):
    return subprocess.run([python, "-c", "import torch, torchvision"],
                          capture_output=True).returncode == 0


def setup_venv(tools):
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
    if tools and subprocess.run([VPY, "-c", "import torchinfo, fvcore, safetensors"],
                                capture_output=True).returncode != 0:
        log("installing torchinfo, fvcore, safetensors")
        subprocess.run([VPY, "-m", "pip", "install", "--quiet", *TOOLS], check=True)


def build_archc():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    log("cargo build --release")
    subprocess.run(["cargo", "build", "--release", "--bin", "archc"], cwd=ROOT, check=True)
    return os.path.join(target, "release", "archc")


def run(cmd, env=None):
    """Run `cmd`; return wall seconds, max RSS (MiB), user and system CPU seconds, its output,
    and the 1-minute load average when it started."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    load1 = os.getloadavg()[0]
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
            "sys_s": ru.ru_stime, "load1": load1, "stdout": text, "stderr": etext}


def quiet(m):
    """A measurement without the process's output (kept out of --json)."""
    m.pop("stdout", None)
    m.pop("stderr", None)
    return m


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


def slug(s):
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")


def int_list(s):
    return [int(x) for x in s.split(",") if x.strip()]


def net_batches(pairs):
    """--batch-for NET=N (repeatable, or comma-separated) over the NETS defaults."""
    batches = {n: v["batch"] for n, v in NETS.items()}
    for item in ",".join(pairs or []).split(","):
        if not item.strip():
            continue
        name, _, n = item.partition("=")
        if name not in NETS or not n.isdigit() or int(n) < 1:
            sys.exit(f"--batch-for {item}: write NET=N with NET one of {', '.join(NETS)}")
        batches[name] = int(n)
    return batches


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archc", help="archc binary (default: cargo build --release)")
    ap.add_argument("--archc-baseline", metavar="PATH",
                    help="a second archc (burn-flex) to compare with, e.g. a build from before a change")
    ap.add_argument("--archc-tch", help="archc built with --features tch (adds LibTorch CPU)")
    ap.add_argument("--archc-tch-baseline", metavar="PATH",
                    help="a second tch build to compare with, e.g. one from before a change")
    ap.add_argument("--skip-flex", action="store_true",
                    help="leave burn-flex (--archc, --archc-baseline) out of training and evaluation")
    ap.add_argument("--flex-untuned", action="store_true",
                    help="also burn-flex with glibc's malloc defaults (runtime/src/malloc.rs off)")
    ap.add_argument("--nets", default=",".join(NETS),
                    help=f"networks to train and evaluate, comma-separated (default: {','.join(NETS)})")
    ap.add_argument("--threads", default=None,
                    help="thread counts, comma-separated, each a separate set of measurements "
                         f"(default: 1,{os.cpu_count()})")
    ap.add_argument("--batch-for", action="append", metavar="NET=N",
                    help="training batch of a network, repeatable (default: "
                         + ", ".join(f"{n}={v['batch']}" for n, v in NETS.items()) + ")")
    ap.add_argument("--eval-batch", type=int, default=256, help="evaluation batch (default: 256)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in QUICK.items())
                         + " (flags given explicitly win)")
    ap.add_argument("--report-runs", type=int, help=f"ResNet-152 report rounds (default {FULL['report_runs']})")
    ap.add_argument("--train-runs", type=int, help=f"training rounds (default {FULL['train_runs']})")
    ap.add_argument("--eval-runs", type=int, help=f"evaluation rounds (default {FULL['eval_runs']})")
    ap.add_argument("--warmup", type=int, help=f"training steps not timed (default {FULL['warmup']})")
    ap.add_argument("--steps", type=int, help=f"training steps timed per run (default {FULL['steps']})")
    ap.add_argument("--eval-batches", type=int,
                    help=f"evaluation batches timed per run, after one untimed (default {FULL['eval_batches']})")
    ap.add_argument("--skip-report", action="store_true")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-eval", action="store_true")
    ap.add_argument("--json", help="write every measurement here")
    ap.add_argument("--summarize", metavar="JSON", help="print the summary of an earlier --json run")
    a = ap.parse_args()
    if a.summarize:
        with open(a.summarize) as f:
            res = json.load(f)
        print(summary(res))
        return
    for k, v in (QUICK if a.quick else FULL).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    threads_list = int_list(a.threads) if a.threads else sorted({1, os.cpu_count()})
    if a.eval_batches < 1 or a.steps < 1 or min(threads_list, default=0) < 1:
        sys.exit("--eval-batches, --steps and every --threads count must be at least 1")
    nets = [n for n in a.nets.split(",") if n]
    for n in nets:
        if n not in NETS:
            sys.exit(f"--nets: unknown network {n} (one of {', '.join(NETS)})")
    batches = net_batches(a.batch_for)

    setup_venv(tools=not a.skip_report)
    archc = a.archc or build_archc()
    torch_lib = subprocess.run(
        [VPY, "-c", "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    versions = subprocess.run(
        [VPY, "-c", "import torch, torchvision; print(torch.__version__, torchvision.__version__)"],
        capture_output=True, text=True, check=True).stdout.split()
    if not a.skip_report:
        versions += subprocess.run(
            [VPY, "-c", "import torchinfo, fvcore; print(torchinfo.__version__, fvcore.__version__)"],
            capture_output=True, text=True, check=True).stdout.split()
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
                 platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    res = {"machine": {"cpu": model, "cpus": os.cpu_count(), "threads": threads_list,
                       "versions": dict(zip(["torch", "torchvision", "torchinfo", "fvcore"], versions)),
                       "archc_commit": commit, "load_start": load()},
           "binaries": {"archc": archc, "archc_baseline": a.archc_baseline,
                        "archc_tch": a.archc_tch, "archc_tch_baseline": a.archc_tch_baseline}}

    def threads_env(t):
        return {"RAYON_NUM_THREADS": str(t), "OMP_NUM_THREADS": str(t), "MKL_NUM_THREADS": str(t)}

    if not a.skip_report:
        env = threads_env(max(threads_list))
        contenders = {
            "archc": [archc, "report", "architectures/resnet.arch", "-n", "resnet152"],
            "torchinfo": [VPY, "bench/report_py.py", "torchinfo"],
            "fvcore": [VPY, "bench/report_py.py", "fvcore"],
        }
        runs = {k: [] for k in contenders}
        for r in range(a.report_runs + 1):  # the first round warms the file cache, not counted
            for name, cmd in contenders.items():
                m = run(cmd, env)
                if name != "archc":
                    m.update(last_json(m["stderr"]))
                if r > 0:
                    runs[name].append(quiet(m))
            log(f"report round {r}/{a.report_runs}, load {load()[0]:.2f}")
        res["report"] = {"threads": max(threads_list), "runs": a.report_runs, "tools": runs}

    phases = [p for p, skip in (("train", a.skip_train), ("eval", a.skip_eval)) if not skip]
    if phases and nets:
        res["nets"], res["cases"] = measure(a, archc, nets, phases, threads_list, batches,
                                            threads_env, torch_lib)

    res["machine"]["load_end"] = load()
    res["args"] = {k: getattr(a, k) for k in ("report_runs", "train_runs", "eval_runs", "warmup", "steps",
                                              "eval_batches", "eval_batch", "quick")}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    print(summary(res))


def measure(a, archc, nets, phases, threads_list, batches, threads_env, torch_lib):
    """The training and evaluation comparisons: returns the networks' facts and the cases,
    each (phase, network, threads) with every contender's measurements."""
    tmp = tempfile.mkdtemp(prefix="archc-bench-")
    facts = {}
    for net in nets:
        spec = NETS[net]
        shape = f"3x{spec['side']}x{spec['side']}"
        rep = json.loads(run([archc, "report", spec["file"], "-n", net, "--input", shape,
                              "--format", "json"])["stdout"])[0]
        classes = 1
        for d in rep["output"] if isinstance(rep["output"], list) else [rep["output"]]:
            classes *= d
        torch_params = last_json(run([VPY, "bench/torch_step.py", "--net", net, "--input", str(spec["side"]),
                                      "--classes", str(classes), "--batch", "2", "--threads", "1",
                                      "--warmup", "0", "--steps", "1", "--eval"], threads_env(1))["stdout"])["params"]
        if torch_params != rep["params"]:
            log(f"WARNING: {net}: archc has {rep['params']:,} parameters, PyTorch's {torch_params:,}")
        facts[net] = {"file": spec["file"], "input": shape, "classes": classes,
                      "params_archc": rep["params"], "params_torch": torch_params,
                      "train_batch": batches[net], "eval_batch": a.eval_batch}
        if "eval" in phases:
            # A seeded checkpoint (one SGD step of batch 4), made before any clock starts.
            out = os.path.join(tmp, f"ckpt-{net}")
            run([archc, "train", spec["file"], "-n", net, "--input", shape, "--data", "synthetic:20",
                 "--no-augment", "--val-fraction", "0", "--batch-size", "4", "--iterations", "1",
                 "--progress", "quiet", "--out", out], threads_env(max(threads_list)))
            facts[net]["checkpoint"] = os.path.join(out, "checkpoints", "last")
        log(f"{net}: {shape}, {classes} classes, {rep['params']:,} parameters (PyTorch {torch_params:,})")

    def archc_train(binary, device, env):
        def go(net, t, r):
            f = facts[net]
            b = f["train_batch"]
            iters = a.warmup + a.steps
            out = os.path.join(tmp, f"train-{slug(binary)}-{device}-{len(env)}-{net}-{t}-{r}")
            # About 6 batches of training images and a test split of a fifth: the evaluation at
            # the end of the run is small (and not in images/s).
            m = run([binary, "train", f["file"], "-n", net, "--input", f["input"],
                     "--data", f"synthetic:{b * 6 // 5 * 5}", "--no-augment", "--val-fraction", "0",
                     "--batch-size", str(b), "--iterations", str(iters), "--log-every", "1",
                     "--eval-every", str(10 * iters), "--progress", "lines", "--device", device,
                     "--out", out], dict(env, **threads_env(t)))
            m["images_per_s"] = images_per_s(out, a.warmup)
            shutil.rmtree(out, ignore_errors=True)
            return quiet(m)
        return go

    def archc_eval(binary, device, env):
        def go(net, t, r):
            f = facts[net]
            b = a.eval_batch

            def once(n_batches):
                # synthetic:N has a test split of N/5 images: n_batches full batches.
                m = run([binary, "eval", f["file"], "-n", net, "--input", f["input"],
                         "--weights", f["checkpoint"], "--data", f"synthetic:{5 * b * n_batches}",
                         "--batch-size", str(b), "--device", device, "--format", "json"],
                        dict(env, **threads_env(t)))
                images = json.loads(m["stdout"])["images"]
                if images != b * n_batches:
                    sys.exit(f"archc eval evaluated {images} images, expected {b * n_batches}")
                return quiet(m)

            short, long = once(1), once(1 + a.eval_batches)
            dt = long["wall_s"] - short["wall_s"]
            dcpu = long["user_s"] + long["sys_s"] - short["user_s"] - short["sys_s"]
            return {"short": short, "long": long, "images": b * a.eval_batches,
                    "images_per_s": b * a.eval_batches / dt if dt > 0 else None,
                    "busy": dcpu / dt if dt > 0 else None,
                    "max_rss_mib": long["max_rss_mib"], "load1": short["load1"]}
        return go

    def torch_eager(phase):
        def go(net, t, r):
            f = facts[net]
            cmd = [VPY, "bench/torch_step.py", "--net", net, "--input", f["input"].split("x")[-1],
                   "--classes", str(f["classes"]), "--threads", str(t)]
            if phase == "train":
                cmd += ["--batch", str(f["train_batch"]), "--warmup", str(a.warmup), "--steps", str(a.steps)]
            else:
                cmd += ["--eval", "--batch", str(a.eval_batch), "--warmup", "1", "--steps", str(a.eval_batches)]
            m = run(cmd, threads_env(t))
            m.update(last_json(m["stdout"]))
            if phase == "train":
                m["images_per_s"] = [f["train_batch"] / s for s in m["step_s"]]
            else:
                m["images_per_s"] = a.eval_batch * len(m["step_s"]) / sum(m["step_s"])
                m["busy"] = None  # the whole process's, below; the passes alone are not measured
            return quiet(m)
        return go

    tch_env = {"LD_LIBRARY_PATH": torch_lib + ":" + os.environ.get("LD_LIBRARY_PATH", "")}
    archcs = []  # (name, binary, device, extra environment)
    if not a.skip_flex:
        archcs.append(("archc burn-flex", archc, "cpu", {}))
        if a.archc_baseline:
            archcs.append(("archc burn-flex, baseline", a.archc_baseline, "cpu", {}))
        if a.flex_untuned:
            # Any GLIBC_TUNABLES makes archc leave malloc alone; this one is glibc's default.
            archcs.append(("archc burn-flex, malloc untuned", archc, "cpu",
                           {"GLIBC_TUNABLES": "glibc.malloc.check=0"}))
    if a.archc_tch:
        archcs.append(("archc LibTorch CPU", a.archc_tch, "libtorch-cpu", tch_env))
        if a.archc_tch_baseline:
            archcs.append(("archc LibTorch CPU, baseline", a.archc_tch_baseline, "libtorch-cpu", tch_env))

    cases = []
    for t in threads_list:
        for net in nets:
            for phase in phases:
                maker = archc_train if phase == "train" else archc_eval
                contenders = {name: maker(binary, device, env) for name, binary, device, env in archcs}
                contenders[TORCH_NAME] = torch_eager(phase)
                cases.append({"phase": phase, "net": net, "threads": t, "input": facts[net]["input"],
                              "batch": facts[net]["train_batch"] if phase == "train" else a.eval_batch,
                              "go": contenders, "runs": {k: [] for k in contenders}})
    # Rounds outermost: each case's rounds are spread over the whole run, and within a case the
    # contenders run one after the other (round-robin).
    rounds = {"train": a.train_runs, "eval": a.eval_runs}
    for r in range(max(rounds[p] for p in phases)):
        for c in cases:
            if r >= rounds[c["phase"]]:
                continue
            for name, go in c["go"].items():
                c["runs"][name].append(go(c["net"], c["threads"], r))
            log(f"round {r + 1}: {c['phase']} {c['net']}, {c['threads']} threads, load {load()[0]:.2f}")
    for c in cases:
        c.pop("go")
        c["rounds"] = rounds[c["phase"]]
        c["warmup"], c["steps"] = (a.warmup, a.steps) if c["phase"] == "train" else (1, a.eval_batches)
    shutil.rmtree(tmp, ignore_errors=True)
    return facts, cases


def case_stats(c):
    """Per contender: images/s median and fastest, CPU busy, max RSS (medians over the runs)."""
    out = {}
    for name, xs in c["runs"].items():
        if c["phase"] == "train":
            rates = [v for x in xs for v in x["images_per_s"]]
            busy = [(x["user_s"] + x["sys_s"]) / x["wall_s"] for x in xs]
        else:
            rates = [x["images_per_s"] for x in xs if x["images_per_s"]]
            busy = [x["busy"] if x.get("busy") is not None else (x["user_s"] + x["sys_s"]) / x["wall_s"]
                    for x in xs]
        out[name] = {"median": med(rates) if rates else float("nan"),
                     "fastest": max(rates) if rates else float("nan"),
                     "busy": med(busy), "rss": med([x["max_rss_mib"] for x in xs]),
                     "loads": [x["load1"] for x in xs if "load1" in x]}
    return out


def ratio(x, ref):
    return f"{x / ref:.2f}x" if ref and ref == ref and x == x else ""


def summary(res):
    m = res["machine"]
    args = res.get("args", {})
    v = m["versions"]
    out = [f"machine: {m['cpu']}, {m['cpus']} CPUs, threads {m['threads']}; checkout {m['archc_commit']}; "
           f"torch {v.get('torch')}, torchvision {v.get('torchvision')}"
           + (f", torchinfo {v['torchinfo']}, fvcore {v['fvcore']}" if "torchinfo" in v else ""),
           f"load average (1, 5, 15 min) at start {tuple(round(x, 2) for x in m['load_start'])}, "
           f"at end {tuple(round(x, 2) for x in m['load_end'])}"]
    # The checkout is where the script and the zoo files came from; a binary given by path may
    # be of another commit (the script cannot tell).
    given = {k: v for k, v in res.get("binaries", {}).items() if v}
    if given:
        out.append("binaries: " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in given.items()))
    out.append("")
    if "report" in res:
        rep = res["report"]
        if "tools" in rep:
            r, n_runs = rep["tools"], rep["runs"]
        else:  # a --json of the version before the training and evaluation cases
            r, n_runs = rep, args.get("report_runs")
        a_wall = med([x["wall_s"] for x in r["archc"]])
        out += [f"ResNet-152 report, {n_runs} runs each, medians:", "",
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
    cases = res.get("cases", [])
    if "train" in res:  # a --json of the version with cifar_resnet20's training only
        cases = [{"phase": "train", "net": "cifar_resnet20", "threads": m["threads"], "input": "3x32x32",
                  "batch": args.get("batch"), "rounds": args.get("train_runs"), "warmup": args.get("warmup"),
                  "steps": args.get("steps"), "runs": {
                      k: [dict(x, images_per_s=x.get("images_per_s") or [args["batch"] / s for s in x["step_s"]])
                          for x in xs] for k, xs in res["train"].items()}}]
    for net, f in res.get("nets", {}).items():
        same = "same" if f["params_archc"] == f["params_torch"] else "DIFFERENT"
        out.append(f"- {net}: {f['file']}, input {f['input']}, {f['classes']} classes, "
                   f"{f['params_archc']:,} parameters in archc, {f['params_torch']:,} in PyTorch ({same})")
    if res.get("nets"):
        out.append("")
    for phase, title, how in (
            ("train", "Training step (forward, cross-entropy, backward, SGD momentum 0.9, wd 1e-4)",
             "images/s of single steps after the warm-up ones (median and fastest over all runs' steps)"),
            ("eval", "Evaluation (forward only, eval mode, no gradients)",
             "images/s of each run's timed batches, archc's as the difference of two processes "
             "(median and fastest run)")):
        pcs = [c for c in cases if c["phase"] == phase]
        if not pcs:
            continue
        c0 = pcs[0]
        unit = "steps" if phase == "train" else "batches"
        out += [f"{title}; runs: {c0['rounds']}, each {c0['steps']} timed {unit} after {c0['warmup']} "
                f"untimed; {how}:", "",
                "| network | batch | threads | contender | images/s (median) | vs PyTorch | images/s (fastest) "
                "| vs PyTorch | CPU busy | max RSS | RSS vs PyTorch | load (1 min) |",
                "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for c in pcs:
            st = case_stats(c)
            ref = st.get(TORCH_NAME, {})
            for name, s in st.items():
                loads = s["loads"]
                out.append(f"| {c['net']} ({c['input']}) | {c['batch']} | {c['threads']} | {name} | "
                           f"{s['median']:.1f} | {ratio(s['median'], ref.get('median'))} | "
                           f"{s['fastest']:.1f} | {ratio(s['fastest'], ref.get('fastest'))} | "
                           f"{s['busy']:.2f} | {s['rss']:.0f} MiB | {ratio(s['rss'], ref.get('rss'))} | "
                           + (f"{min(loads):.1f}–{max(loads):.1f} |" if loads else " |"))
        out.append("")
    if any(c["phase"] == "eval" for c in cases):
        out.append("CPU busy in evaluation: archc's is (user+sys) / wall of the difference of its two "
                   "processes; PyTorch's is its whole process's (imports and model construction included).")
    return "\n".join(out)


if __name__ == "__main__":
    main()
