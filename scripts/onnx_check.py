"""Check `archc export --format onnx` against onnx and onnxruntime, for every zoo network.

    scripts/libtorch.sh python scripts/onnx_check.py ARCHC_BINARY WORK_DIR [--opset K]
        [--max-params N] [--min-params N] [FILE.arch ...]

(onnx==1.23.2 and onnxruntime==1.32.0 in the venv; .ci/run installs them.) For each network
of each file (default: every file of architectures/):

1. `archc export` writes the model with the seeded initialisation (seed 0), at opset K
   (default: archc's default, 17);
2. `onnx.checker.check_model(full_check=True)` accepts it; its input is `input` with a
   symbolic batch, its first output `output`; its initializers hold exactly the report's
   parameters plus buffers (`archc report --format json`);
3. every vector initializer (biases, norms' scales, shifts and running statistics) is moved
   off its initial value (seeded), for onnxruntime (`SessionOptions.add_initializer`) and in
   the state dict alike, so that batch norm is not the identity; the initializers, written as a safetensors state dict, go to
   `archc forward` with a seeded random input: archc's own logits on the same weights;
4. onnxruntime runs the model on the same input: its `output` must equal archc's within
   max|ort - archc| <= 1e-4 * max|archc| + 1e-5 (both in f32); auxiliary outputs (archc
   forward gives the main one only) must be [batch, classes] and finite.

With --max-params, networks of more parameters are listed as skipped (CI checks every
network: the time goes with the weights, VGG's half-gigabyte models take about 15 s each in a
debug build, the 331 M parameters of prelu_net_c 44 s); --min-params N checks only those of at
least N.
Networks run at a smaller input where their parameters do not depend on its size (global or
adaptive pooling before the classifier: the report's parameter count is the same), as
`--input-shape` allows, so the check stays cheap; the size used is printed. Models are
deleted once checked. Exits non-zero if any network fails.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper
from safetensors.numpy import load_file, save_file

ROOT = Path(__file__).resolve().parent.parent
REL, ABS = 1e-4, 1e-5
# Smaller inputs tried, in order, for a network whose declared input is larger.
SMALL = [32, 64, 96, 128]


def archc(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True)


def reports(binary, path, shape=None):
    """The JSON reports of every network of `path` (at `shape`), or None if it fails."""
    args = ["report", str(path), "--format", "json"]
    if shape:
        args += ["--input", shape]
    r = archc(binary, *args)
    return json.loads(r.stdout) if r.returncode == 0 else None


def input_shapes(binary, path):
    """Each network's report and the input shape to check it at (None: the declared one)."""
    declared = reports(binary, path) or []
    out = []
    for rep in declared:
        c, h, w = rep["input"]
        chosen = None
        for s in SMALL:
            if s >= min(h, w):
                break
            shape = f"{c}x{s}x{s}"
            r = archc(binary, "report", str(path), "-n", rep["network"], "--format", "json", "--input", shape)
            if r.returncode == 0 and json.loads(r.stdout)[0]["params"] == rep["params"]:
                chosen = shape
                break
        out.append((rep, chosen))
    return out


def forward(binary, path, net, x, weights, work, extra):
    """archc's logits for `x` with `weights`, or what went wrong."""
    save_file({k: np.ascontiguousarray(v) for k, v in weights.items()}, str(work / "w.safetensors"))
    save_file({"input": x}, str(work / "x.safetensors"))
    r = archc(binary, "forward", str(path), "-n", net, "--weights", str(work / "w.safetensors"),
              "--input", str(work / "x.safetensors"), "--output", str(work / "y.safetensors"), *extra)
    if r.returncode != 0:
        return f"archc forward failed: {r.stderr.strip()}"
    return load_file(str(work / "y.safetensors"))["output"]


def check(binary, path, rep, shape, work, rng, opset):
    net = rep["network"]
    model_path = work / f"{net}.onnx"
    extra = ["--input-shape", shape] if shape else []
    versions = ["--opset", opset] if opset else []
    r = archc(binary, "export", str(path), "-n", net, "--format", "onnx", "-o", str(model_path), *extra,
              *versions)
    if r.returncode != 0:
        return f"export failed: {r.stderr.strip()}"
    onnx.checker.check_model(str(model_path), full_check=True)
    model = onnx.load(str(model_path))
    g = model.graph
    dims = g.input[0].type.tensor_type.shape.dim
    if g.input[0].name != "input" or not dims[0].dim_param or g.output[0].name != "output":
        return f"input/output: {g.input[0].name} {dims[0]} {g.output[0].name}"
    weights = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    elements = sum(a.size for a in weights.values())
    if elements != rep["params"] + rep["buffers"]:
        return f"initializers hold {elements} values, the report {rep['params']} + {rep['buffers']}"
    c, h, w = [int(d) for d in shape.split("x")] if shape else rep["input"]
    batch = 2 if h * w <= 64 * 64 else 1
    x = rng.standard_normal((batch, c, h, w)).astype(np.float32)
    # The seeded initialisation leaves every norm the identity (running mean 0, variance 1,
    # scale 1, shift 0) and biases 0, which would hide a swapped mean and variance or a wrong
    # epsilon: move every vector (and layer scale) off those values, for onnxruntime (its
    # initializers overridden) and in the weights archc loads alike.
    seeded = dict(weights)
    for name, a in list(weights.items()):
        if a.ndim == 1 or name.endswith("layer_scale"):
            if name.endswith("running_var"):
                a = rng.uniform(0.5, 2.0, a.shape)
            else:
                a = a * rng.uniform(0.5, 1.5, a.shape) + rng.normal(0.0, 0.1, a.shape)
            weights[name] = a.astype(np.float32)
    ref = forward(binary, path, net, x, weights, work, extra)
    if isinstance(ref, np.ndarray) and not np.isfinite(ref).all():
        # A deep residual network at a Kaiming initialisation doubles its activations'
        # variance block by block: cifar_resnet1202's logits overflow f32 (archc's and
        # onnxruntime's alike). Batch norm scales of a tenth keep each block's branch small.
        for name in weights:
            if name.endswith(".weight") and name[: -len("weight")] + "running_var" in weights:
                weights[name] = weights[name] * np.float32(0.1)
        ref = forward(binary, path, net, x, weights, work, extra)
    if isinstance(ref, str):
        return ref

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    changed = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(a)) if a is not seeded[k] else None
               for k, a in weights.items()]
    for (name, _), v in zip(weights.items(), changed):
        if v is not None:
            opts.add_initializer(name, v)
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"input": x})
    got = outs[0]
    # Auxiliary heads (extra outputs): archc forward gives the main one only, so these are
    # checked for their shape and finiteness.
    for o, v in zip(g.output[1:], outs[1:]):
        if v.shape != (batch, int(o.type.tensor_type.shape.dim[1].dim_value)) or not np.isfinite(v).all():
            return f"auxiliary output {o.name}: shape {v.shape} or not finite"
    model_path.unlink()
    if got.shape != ref.shape:
        return f"output shape {got.shape}, archc {ref.shape}"
    diff = float(np.abs(got - ref).max())
    scale = float(np.abs(ref).max())
    tol = REL * scale + ABS
    if not np.isfinite(ref).all() or not diff <= tol:
        return f"max|diff| {diff:.3g} > {tol:.3g} (max|archc| {scale:.3g})"
    return None, diff, scale, len(g.node)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    binary, work, rest = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    opset, max_params, min_params = None, None, 0
    while rest[:1] in (["--opset"], ["--max-params"], ["--min-params"]):
        if rest[0] == "--opset":
            opset = rest[1]
        elif rest[0] == "--max-params":
            max_params = int(rest[1])
        else:
            min_params = int(rest[1])
        rest = rest[2:]
    work.mkdir(parents=True, exist_ok=True)
    files = [Path(f) for f in rest] or sorted((ROOT / "architectures").glob("*.arch"))
    rng = np.random.default_rng(0)
    failures, skipped, count, start = [], [], 0, time.time()
    for path in files:
        for rep, shape in input_shapes(binary, path):
            if max_params is not None and rep["params"] > max_params:
                skipped.append(f"{rep['network']} ({rep['params'] / 1e6:.0f} M)")
                continue
            if rep["params"] < min_params:
                continue
            t0 = time.time()
            r = check(binary, path, rep, shape, work, rng, opset)
            at = shape or "x".join(map(str, rep["input"]))
            name = f"{path.name}:{rep['network']} at {at}"
            count += 1
            if isinstance(r, str):
                failures.append(f"{name}: {r}")
                print(f"FAIL {name}: {r}", flush=True)
            else:
                _, diff, scale, nodes = r
                print(f"ok   {name}: {nodes} nodes, max|diff| {diff:.2e} (max|archc| {scale:.2e}), "
                      f"{time.time() - t0:.1f} s", flush=True)
    for f in ("w.safetensors", "x.safetensors", "y.safetensors"):
        (work / f).unlink(missing_ok=True)
    print(f"{count - len(failures)} of {count} networks agree with onnxruntime at opset {opset or 17} "
          f"(onnx {onnx.__version__}, onnxruntime {ort.__version__}) in {time.time() - start:.0f} s")
    if skipped:
        print(f"skipped, over {max_params} parameters: {', '.join(skipped)}")
    if failures:
        print("\n".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
