//! `archc train --init`, `--init-partial`, `--freeze`, `--lr-scale` and `--optimizer adamw`
//! end to end on the tiny network (archc's names: `stem.conv1`, `stage1.0.bn1`,
//! `stage2.0.downsample.0`, `head.fc1`) and synthetic data, on CPU.
#![cfg(feature = "runtime")]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use assert_cmd::Command;

const TINY: &str = include_str!("../runtime/tests/fixtures/tiny.arch");

fn archc() -> Command {
    let mut c = Command::cargo_bin("archc").unwrap();
    c.env("NO_COLOR", "1");
    c
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// `archc train FILE -n tiny` on 64 synthetic images, batch 16, `iterations` steps, no
/// augmentation, lr 0.05 unless `extra` gives one, and the rest of `extra`.
fn train(file: &str, out: &Path, iterations: u64, extra: &[&str]) -> Output {
    let it = iterations.to_string();
    archc()
        .args(["train", file, "-n", "tiny", "--data", "synthetic:64"])
        .args(["--out", out.to_str().unwrap(), "--iterations", &it])
        .args(["--batch-size", "16", "--val-fraction", "0", "--no-augment"])
        .args(["--progress", "lines", "--milestones", "1000"])
        .args(if extra.contains(&"--lr") {
            &[][..]
        } else {
            &["--lr", "0.05"][..]
        })
        .args(extra)
        .output()
        .unwrap()
}

#[track_caller]
fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    err
}

fn tensors(p: &Path) -> BTreeMap<String, Vec<f32>> {
    let bytes = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .filter(|(_, v)| v.dtype() == safetensors::Dtype::F32)
        .map(|(k, v)| {
            let f = v
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (k, f)
        })
        .collect()
}

fn last(run: &Path) -> BTreeMap<String, Vec<f32>> {
    tensors(&run.join("checkpoints/last/model.safetensors"))
}

fn config(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap()
}

/// `sha256sum FILE` (coreutils: a reference independent of archc's hashing).
fn sha256sum(p: &Path) -> String {
    let o = std::process::Command::new("sha256sum")
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8(o.stdout).unwrap()[..64].to_string()
}

/// A pretrained tiny network (3 steps), its checkpoint folder.
fn pretrained(dir: &Path, file: &str) -> std::path::PathBuf {
    let run = dir.join("pre");
    ok(&train(file, &run, 3, &["--momentum", "0.9"]));
    run.join("checkpoints/last")
}

#[test]
fn init_loads_by_name_and_shape_and_says_what_it_did() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = write(d, "tiny.arch", TINY);
    let ck = pretrained(d, &f);
    let weights = ck.join("model.safetensors");
    let pre = tensors(&weights);

    // Another class count: the classifier is initialised afresh, everything else loaded.
    let run = d.join("four");
    let err = ok(&train(
        &f,
        &run,
        1,
        &[
            "--classes",
            "4",
            "--init",
            ck.to_str().unwrap(),
            "--lr",
            "0.0000001",
        ],
    ));
    assert!(
        err.contains("init: 30 tensors loaded from"),
        "6 convs and 6 batch norms (4 tensors each), not the classifier's 2:\n{err}"
    );
    assert!(
        err.contains("init: loaded stage1 (10), stage2 (15), stem (5)"),
        "{err}"
    );
    assert!(
        err.contains(
            "init: re-initialised head.fc1.weight: [10, 16] in the file, [4, 16] here (the classifier)"
        ),
        "{err}"
    );
    assert!(err.contains("init: re-initialised head.fc1.bias"), "{err}");
    assert!(err.contains("init: ignored 6 num_batches_tracked"), "{err}");
    let c = config(&run);
    assert_eq!(c["init"]["path"], ck.to_str().unwrap());
    assert_eq!(c["init"]["sha256"], sha256sum(&weights).as_str());
    assert_eq!(c["init"]["partial"], false);
    // At lr 1e-7 one step moves a weight by far less than 1e-4: loaded means equal to it.
    let tuned = last(&run);
    for key in ["stem.conv1.weight", "stage2.0.downsample.0.weight"] {
        let diff = pre[key]
            .iter()
            .zip(&tuned[key])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-4, "{key}: {diff}");
    }
    assert_eq!(tuned["head.fc1.weight"].len(), 4 * 16);

    // A key the network has no place for is ignored and named.
    let bytes = std::fs::read(&weights).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let extra = [1f32, 2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect::<Vec<u8>>();
    let mut views: Vec<(String, safetensors::tensor::TensorView)> = st.tensors();
    views.push((
        "aux.fc.weight".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &extra).unwrap(),
    ));
    let with_extra = d.join("extra.safetensors");
    safetensors::serialize_to_file(views, None, &with_extra).unwrap();
    let err = ok(&train(
        &f,
        &d.join("extra"),
        1,
        &["--init", with_extra.to_str().unwrap()],
    ));
    assert!(
        err.contains("init: ignored aux.fc.weight (no such weight in the network)"),
        "{err}"
    );
    assert!(err.contains("init: 32 tensors loaded"), "{err}");
}

#[test]
fn init_refuses_other_shapes_outside_the_classifier_unless_partial() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = write(d, "tiny.arch", TINY);
    let ck = pretrained(d, &f);
    // The same names, a wider second stage.
    let wide = write(
        d,
        "wide.arch",
        &TINY.replace("stage2   basic(16)", "stage2   basic(24)"),
    );
    let run = d.join("wide");
    let o = train(&wide, &run, 1, &["--init", ck.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("outside its classifier `head.fc1` have another shape in the file"),
        "{err}"
    );
    assert!(
        err.contains(
            "wrong shape     stage2.0.conv1.weight: expected [24, 8, 3, 3], found [16, 8, 3, 3]"
        ),
        "{err}"
    );
    assert!(err.contains("Give --init-partial"), "{err}");
    assert!(!run.join("config.json").exists(), "no run is left behind");

    let err = ok(&train(
        &wide,
        &run,
        1,
        &["--init", ck.to_str().unwrap(), "--init-partial"],
    ));
    assert!(
        err.contains("init: re-initialised stage2.0.conv1.weight: [16, 8, 3, 3] in the file, [24, 8, 3, 3] here"),
        "{err}"
    );
    // The classifier's weight takes the wider input; its bias still fits.
    assert!(
        err.contains("init: loaded head (1), stage1 (10), stem (5)"),
        "{err}"
    );
    assert_eq!(config(&run)["init"]["partial"], true);

    // A file with none of the network's names.
    let other = write(
        d,
        "renamed.arch",
        &TINY.replace("network tiny {", "network tiny {\n    names resnet"),
    );
    let o = train(
        &other,
        &d.join("renamed"),
        1,
        &["--init", ck.to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("has a name of network `tiny`"), "{err}");
}

#[test]
fn a_resumed_run_does_not_need_the_init_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = write(d, "tiny.arch", TINY);
    let ck = pretrained(d, &f);
    let copy = d.join("start.safetensors");
    std::fs::copy(ck.join("model.safetensors"), &copy).unwrap();
    let run = d.join("run");
    let flags = ["--init", copy.to_str().unwrap(), "--freeze", "stem"];
    ok(&train(&f, &run, 2, &flags));
    let sha = sha256sum(&copy);
    std::fs::remove_file(&copy).unwrap();
    let err = ok(&train(&f, &run, 4, &[&flags[..], &["--resume"]].concat()));
    assert!(err.contains("resuming at iteration 2"), "{err}");
    assert!(!err.contains("init:"), "the file is not read again:\n{err}");
    assert_eq!(config(&run)["init"]["sha256"], sha.as_str());
    // A flag of the run that differs on resume is refused, naming it.
    let o = train(&f, &run, 6, &["--resume", "--freeze", "stage1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--freeze is stem in the run, stage1 here"),
        "{err}"
    );
}

#[test]
fn frozen_layers_keep_their_weights_and_batch_norm_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = write(d, "tiny.arch", TINY);
    let ck = pretrained(d, &f);
    let pre = tensors(&ck.join("model.safetensors"));
    let run = d.join("frozen");
    let err = ok(&train(
        &f,
        &run,
        3,
        &[
            "--init",
            ck.to_str().unwrap(),
            "--freeze",
            "stem,stage2.0.downsample",
            "--momentum",
            "0.9",
            "--weight-decay",
            "0.001",
        ],
    ));
    assert!(
        err.contains("4 layers frozen (stem, stage2.0.downsample)"),
        "{err}"
    );
    assert_eq!(
        config(&run)["train"]["freeze"],
        serde_json::json!(["stem", "stage2.0.downsample"])
    );
    let tuned = last(&run);
    for (key, v) in &pre {
        let frozen = key.starts_with("stem.") || key.starts_with("stage2.0.downsample.");
        if frozen {
            assert_eq!(
                &tuned[key], v,
                "{key} is frozen: weights and running statistics"
            );
        } else {
            assert_ne!(&tuned[key], v, "{key} trains");
        }
    }
    // A prefix that names no layer is a usage error listing the names.
    let o = train(&f, &d.join("bad"), 1, &["--freeze", "layer1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--freeze `layer1` names no layer with weights of `tiny`"),
        "{err}"
    );
    assert!(err.contains("`stem`, `stage1`, `stage2`, `head`"), "{err}");
}

#[test]
fn lr_scale_scales_the_step_of_the_layers_under_it() {
    // One plain SGD step (no momentum, no decay) from the same weights: a layer at scale F
    // moves F times as far as at scale 1; the others move the same.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = write(d, "tiny.arch", TINY);
    let ck = pretrained(d, &f);
    let pre = tensors(&ck.join("model.safetensors"));
    let init = [
        "--init",
        ck.to_str().unwrap(),
        "--momentum",
        "0",
        "--weight-decay",
        "0",
    ];
    let plain = d.join("plain");
    ok(&train(&f, &plain, 1, &init));
    let scaled = d.join("scaled");
    let err = ok(&train(
        &f,
        &scaled,
        1,
        &[
            &init[..],
            &["--lr-scale", "stage2=0.5", "--lr-scale", "stage2.0.conv2=0"],
        ]
        .concat(),
    ));
    assert!(
        err.contains("learning-rate scales stage2=0.5, stage2.0.conv2=0"),
        "{err}"
    );
    let (a, b) = (last(&plain), last(&scaled));
    for (key, p) in &pre {
        if key.contains("running_") {
            continue;
        }
        let factor = if key.starts_with("stage2.0.conv2.") {
            0.0
        } else if key.starts_with("stage2.") {
            0.5
        } else {
            1.0
        };
        let step = |m: &BTreeMap<String, Vec<f32>>| -> Vec<f64> {
            m[key]
                .iter()
                .zip(p)
                .map(|(x, y)| (*x - *y) as f64)
                .collect()
        };
        let (sa, sb) = (step(&a), step(&b));
        let norm = sa.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!(norm > 0.0, "{key} moves");
        let off = sa
            .iter()
            .zip(&sb)
            .map(|(x, y)| (x * factor - y).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(
            off <= 1e-3 * norm,
            "{key}: scale {factor}: off by {off:e} of {norm:e}"
        );
    }
    let c = config(&scaled);
    assert_eq!(c["train"]["lr_scale"][0]["prefix"], "stage2");
    assert_eq!(c["train"]["lr_scale"][0]["factor"], 0.5);
}

#[test]
fn adamw_flags_are_checked_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = write(d, "tiny.arch", TINY);
    let o = train(&f, &d.join("a"), 1, &["--betas", "0.8,0.99"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("--betas and --eps are AdamW's"), "{err}");
    let run = d.join("b");
    ok(&train(
        &f,
        &run,
        2,
        &[
            "--optimizer",
            "adamw",
            "--betas",
            "0.8,0.99",
            "--eps",
            "1e-6",
        ],
    ));
    let c = config(&run);
    assert_eq!(
        c["train"]["adamw"],
        serde_json::json!({"beta1": 0.8, "beta2": 0.99, "eps": 1e-6})
    );
    // Resumed with its state (the moments and step counts are in optimizer.safetensors).
    ok(&train(&f, &run, 3, &["--resume", "--optimizer", "adamw"]));
    let o = train(&f, &run, 4, &["--resume", "--optimizer", "sgd"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--optimizer is adamw in the run, sgd here"),
        "{err}"
    );
}
