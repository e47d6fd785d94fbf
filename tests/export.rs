//! `archc export --format onnx` end to end: the model read back with ONNX's own schema (input,
//! outputs, dynamic batch, opset, initializers against the compiler's parameter list), the
//! weights it carries, and bad input refused with nothing left behind. Numerics against
//! onnxruntime are `scripts/onnx_check.py` (CI, every zoo network).
#![cfg(feature = "runtime")]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use archc_compiler::lower::LoweredOp;
use archc_onnx::onnx::tensor_shape_proto::dimension::Value as Dim;
use archc_onnx::onnx::{type_proto, ModelProto, ValueInfoProto};
use archc_onnx::Message;
use assert_cmd::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn archc() -> Command {
    let mut c = Command::cargo_bin("archc").unwrap();
    c.env("NO_COLOR", "1");
    c
}

fn path(rel: &str) -> String {
    Path::new(ROOT).join(rel).display().to_string()
}

/// `archc export FILE -n NET --format onnx -o OUT EXTRA…`, which must succeed; the model.
fn export(file: &str, net: &str, out: &Path, extra: &[&str]) -> ModelProto {
    archc()
        .args(["export", &path(file), "-n", net, "--format", "onnx", "-o"])
        .arg(out)
        .args(extra)
        .assert()
        .success();
    ModelProto::parse_from_bytes(&std::fs::read(out).unwrap()).unwrap()
}

/// A value's name and dimensions (`None` for a symbolic one, with its name).
fn dims(v: &ValueInfoProto) -> (String, Vec<Result<i64, String>>) {
    let Some(type_proto::Value::TensorType(t)) = &v.type_.value else {
        panic!("{v:?} is not a tensor");
    };
    let d = t
        .shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(Dim::DimValue(v)) => Ok(*v),
            Some(Dim::DimParam(p)) => Err(p.clone()),
            _ => panic!("a dimension without a value"),
        })
        .collect();
    (v.name().to_string(), d)
}

fn lowered(file: &str, net: &str) -> archc_compiler::lower::LoweredGraph {
    let (sources, prog) = archc_compiler::load_path(Path::new(&path(file)));
    let prog = prog.unwrap_or_else(|_| panic!("{file} loads"));
    let typed = archc_compiler::build_network(&prog, net, &Default::default())
        .unwrap_or_else(|d| panic!("{}", d.render_plain(&sources)));
    archc_compiler::lower::lower(&typed)
}

#[test]
fn the_model_has_onnx_s_input_outputs_opset_and_the_state_dict() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r20.onnx");
    let m = export("architectures/cifar.arch", "cifar_resnet20", &out, &[]);
    assert_eq!(m.ir_version, Some(8));
    let sets: Vec<(&str, i64)> = m
        .opset_import
        .iter()
        .map(|s| (s.domain(), s.version()))
        .collect();
    assert_eq!(sets, [("", 17)]);
    let g = &m.graph;
    let batch = Err("batch".to_string());
    assert_eq!(g.input.len(), 1);
    assert_eq!(
        dims(&g.input[0]),
        ("input".into(), vec![batch.clone(), Ok(3), Ok(32), Ok(32)])
    );
    assert_eq!(g.output.len(), 1);
    assert_eq!(dims(&g.output[0]), ("output".into(), vec![batch, Ok(10)]));

    // The initializers are the state dict: each parameter of the compiler's list, with its
    // shape, and batch norm's running statistics; nothing else.
    let l = lowered("architectures/cifar.arch", "cifar_resnet20");
    let mut expected: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for n in &l.nodes {
        for (slot, shape) in n.op.param_shapes() {
            let shape = shape.iter().map(|&d| d as i64).collect();
            expected.insert(format!("{}.{slot}", n.name), shape);
        }
        if let LoweredOp::BatchNorm { num_features, .. } = n.op {
            for stat in ["running_mean", "running_var"] {
                expected.insert(format!("{}.{stat}", n.name), vec![num_features as i64]);
            }
        }
    }
    let got: BTreeMap<String, Vec<i64>> = g
        .initializer
        .iter()
        .map(|t| (t.name().to_string(), t.dims.clone()))
        .collect();
    assert_eq!(got, expected);
    assert!(g
        .initializer
        .iter()
        .all(|t| t.raw_data().len() == 4 * t.dims.iter().product::<i64>() as usize));

    // Every node reads values defined before it (the graph is in topological order) and is
    // an operator of the standard domain.
    let mut defined: HashSet<&str> = g.initializer.iter().map(|t| t.name()).collect();
    defined.insert("input");
    for n in &g.node {
        for i in &n.input {
            assert!(
                defined.contains(i.as_str()),
                "{} reads undefined {i}",
                n.name()
            );
        }
        assert_eq!(n.domain(), "");
        defined.extend(n.output.iter().map(String::as_str));
    }
    assert!(defined.contains("output"));
    let ops: BTreeSet<&str> = g.node.iter().map(|n| n.op_type()).collect();
    // Option A's shortcut is a strided Slice and a Pad of zero channels.
    for op in [
        "Conv",
        "BatchNormalization",
        "Relu",
        "Sum",
        "Slice",
        "Pad",
        "GlobalAveragePool",
        "Gemm",
    ] {
        assert!(ops.contains(op), "no {op} in {ops:?}");
    }
}

#[test]
fn auxiliary_heads_are_named_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let m = export(
        "runtime/tests/fixtures/branches.arch",
        "branches",
        &dir.path().join("b.onnx"),
        &[],
    );
    let outputs: Vec<String> = m.graph.output.iter().map(|o| dims(o).0).collect();
    assert_eq!(outputs, ["output", "aux"]);
    let ops: BTreeSet<&str> = m.graph.node.iter().map(|n| n.op_type()).collect();
    for op in ["Concat", "Mul", "Max", "Sum", "Transpose", "Reshape"] {
        assert!(ops.contains(op), "no {op} in {ops:?}");
    }
}

#[test]
fn the_opset_chooses_gelu_s_form() {
    let dir = tempfile::tempdir().unwrap();
    let file = "tests/fixtures/export/ops.arch";
    let ops = |m: &ModelProto| -> BTreeSet<String> {
        m.graph
            .node
            .iter()
            .map(|n| n.op_type().to_string())
            .collect()
    };
    let old = export(file, "activations", &dir.path().join("17.onnx"), &[]);
    let new = export(
        file,
        "activations",
        &dir.path().join("20.onnx"),
        &["--opset", "20"],
    );
    assert!(ops(&old).contains("Erf") && !ops(&old).contains("Gelu"));
    assert!(ops(&new).contains("Gelu") && !ops(&new).contains("Erf"));
    assert_eq!(
        (new.ir_version, new.opset_import[0].version),
        (Some(9), Some(20))
    );
}

#[test]
fn weights_come_from_the_file_or_the_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (file, net) = ("runtime/tests/fixtures/tiny.arch", "tiny");
    let values = |m: &ModelProto| -> BTreeMap<String, Vec<u8>> {
        m.graph
            .initializer
            .iter()
            .map(|t| (t.name().to_string(), t.raw_data().to_vec()))
            .collect()
    };
    let seven = export(file, net, &dir.path().join("7.onnx"), &["--seed", "7"]);
    let zero = export(file, net, &dir.path().join("0.onnx"), &[]);
    assert_ne!(values(&seven), values(&zero));
    // Seed 7's weights saved by the runtime, then exported from the file.
    let l = lowered(file, net);
    let device = archc_runtime::Device::flex();
    let w = dir.path().join("w.safetensors");
    archc_runtime::Network::new(&l, &device, 7)
        .unwrap()
        .save_weights(&w)
        .unwrap();
    let w = w.display().to_string();
    let loaded = export(file, net, &dir.path().join("w.onnx"), &["--weights", &w]);
    assert_eq!(values(&loaded), values(&seven));
}

#[test]
fn bad_input_is_refused_and_nothing_is_left_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = path("architectures/cifar.arch");
    let out = dir.path().join("m.onnx");
    let run = |args: &[&str]| {
        let format: &[&str] = if args.contains(&"--format") {
            &[]
        } else {
            &["--format", "onnx"]
        };
        let o = archc()
            .args(["export", &file])
            .args(format)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let o = out.to_str().unwrap();
    let (code, err) = run(&["-n", "cifar_resnet20", "-o", o, "--opset", "11"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("opset 11 is not supported") && err.contains("17 to 22"),
        "{err}"
    );
    let (code, err) = run(&["-n", "resnet20", "-o", o]);
    assert_eq!(code, Some(2));
    assert!(err.contains("no network `resnet20`"), "{err}");
    // ONNX's flags with the other format.
    let (code, err) = run(&["-n", "cifar_resnet20", "--format", "pytorch", "--seed", "3"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("applies to `--format onnx` only"), "{err}");
    let missing = dir.path().join("no/such/folder/m.onnx");
    let (code, err) = run(&["-n", "cifar_resnet20", "-o", missing.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("cannot write"), "{err}");
    // A folder in the way: the write fails at the rename, and the temporary file is removed.
    let folder = dir.path().join("taken.onnx");
    std::fs::create_dir(&folder).unwrap();
    let (code, err) = run(&["-n", "cifar_resnet20", "-o", folder.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["taken.onnx"]);
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
}

/// `scripts/onnx_check.py` with this build's archc: onnx.checker and onnxruntime against
/// `archc forward` on every zoo network (103, up to prelu_net_c's 331 M parameters; about 8
/// minutes on the 2-core development machine) and on the op fixtures, then the fixtures again at
/// opset 22 (docs/export.md, "Checked"). CI runs it with the venv's Python (`ARCHC_PYTHON`, with
/// onnx 1.23.2, onnxruntime 1.32.0, numpy and safetensors).
#[test]
#[ignore = "needs ARCHC_PYTHON with onnx and onnxruntime; CI runs it"]
fn onnxruntime_agrees_with_archc_forward() {
    let python = std::env::var("ARCHC_PYTHON")
        .expect("ARCHC_PYTHON: a Python with onnx, onnxruntime, numpy and safetensors");
    let work = tempfile::tempdir().unwrap();
    let mut zoo: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("architectures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "arch"))
        .map(|p| p.display().to_string())
        .collect();
    zoo.sort();
    let fixtures = [
        "tests/fixtures/export/ops.arch",
        "runtime/tests/fixtures/units.arch",
        "runtime/tests/fixtures/branches.arch",
    ]
    .map(path);
    let check = |args: &[&str], files: &[String]| {
        let status = std::process::Command::new(&python)
            .arg(path("scripts/onnx_check.py"))
            .arg(env!("CARGO_BIN_EXE_archc"))
            .arg(work.path())
            .args(args)
            .args(files)
            .status()
            .expect("runs Python");
        assert!(status.success(), "scripts/onnx_check.py {args:?} failed");
    };
    check(&[], &[zoo, fixtures.to_vec()].concat());
    check(&["--opset", "22"], &fixtures);
}
