//! `archc train`, `eval`, `plot` and `forward` end to end on a tiny network and synthetic data
//! (CPU). Only with the `runtime` feature (the default).
#![cfg(feature = "runtime")]

use std::path::Path;

use assert_cmd::Command;

const TINY: &str = r#"
block basic(c) {
    conv 3x3, c, stride: stride
    conv 3x3, c
}

network tiny {
    input    3x16x16
    classes  10
    shortcut B
    stem     conv 3x3, 8
    stage1   basic(8) x 1
    stage2   basic(16) x 1, stride: 2
    head     avgpool, fc classes
}
"#;

fn archc() -> Command {
    let mut c = Command::cargo_bin("archc").unwrap();
    c.env("NO_COLOR", "1");
    c
}

fn tiny(dir: &Path) -> String {
    let p = dir.join("tiny.arch");
    std::fs::write(&p, TINY).unwrap();
    p.display().to_string()
}

#[test]
fn dry_run_prints_the_resolved_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let out = dir.path().join("run");
    let o = archc()
        .args([
            "train",
            &f,
            "-n",
            "tiny",
            "--data",
            "synthetic:200",
            "--dry-run",
        ])
        .args([
            "--out",
            out.to_str().unwrap(),
            "--epochs",
            "2",
            "--warmup",
            "10:0.01",
        ])
        .args(["--batch-size", "16"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8(o.stdout).unwrap();
    assert!(s.contains("\"recipe\": \"paper-cifar\""), "{s}");
    assert!(s.contains("\"warmup\""), "{s}");
    assert!(!out.exists(), "a dry run writes nothing");
}

#[test]
fn train_eval_plot_and_resume_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let run = dir.path().join("run");
    let run_s = run.to_str().unwrap();
    let o = archc()
        .args([
            "train",
            &f,
            "-n",
            "tiny",
            "--data",
            "synthetic:200",
            "--out",
            run_s,
        ])
        .args([
            "--iterations",
            "6",
            "--batch-size",
            "16",
            "--eval-every",
            "3",
            "--log-every",
            "3",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("iter 3/6"),
        "plain progress lines when not a terminal: {err}"
    );
    for f in [
        "config.json",
        "metrics.csv",
        "metrics.jsonl",
        "error.svg",
        "error.png",
    ] {
        assert!(run.join(f).is_file(), "{f}");
    }
    // The same folder again without --resume is refused; with --resume and more iterations it continues.
    let o = archc()
        .args([
            "train",
            &f,
            "-n",
            "tiny",
            "--data",
            "synthetic:200",
            "--out",
            run_s,
        ])
        .args(["--iterations", "6"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = archc()
        .args([
            "train",
            &f,
            "-n",
            "tiny",
            "--data",
            "synthetic:200",
            "--out",
            run_s,
        ])
        .args(["--iterations", "9", "--resume"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("9,")), "{csv}");

    let o = archc()
        .args(["eval", &f, "-n", "tiny", "--data", "synthetic:200"])
        .args(["--weights", run.join("checkpoints/best").to_str().unwrap()])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        s.contains("top-1 error") && s.contains("synthetic test (40 images"),
        "{s}"
    );

    let fig = dir.path().join("fig");
    let o = archc()
        .args(["plot", run_s, run_s, "--out", fig.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::metadata(dir.path().join("fig.svg")).unwrap().len() > 0);
    assert!(std::fs::metadata(dir.path().join("fig.png")).unwrap().len() > 0);

    // forward: two 3x16x16 images in, [2, 10] logits out.
    let x: Vec<u8> = (0..2 * 3 * 16 * 16)
        .flat_map(|i| ((i % 7) as f32 / 7.0).to_le_bytes())
        .collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2, 3, 16, 16], &x)
            .unwrap();
    let input = dir.path().join("x.safetensors");
    safetensors::serialize_to_file([("input", view)], None, &input).unwrap();
    let output = dir.path().join("y.safetensors");
    let o = archc()
        .args(["forward", &f, "-n", "tiny", "--weights"])
        .arg(run.join("checkpoints/last/model.safetensors"))
        .arg("--input")
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let buf = std::fs::read(&output).unwrap();
    let st = safetensors::SafeTensors::deserialize(&buf).unwrap();
    assert_eq!(st.tensor("output").unwrap().shape(), &[2, 10]);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    // An output folder that cannot be created: exit 1, names it.
    let o = archc()
        .args([
            "train",
            &f,
            "-n",
            "tiny",
            "--data",
            "synthetic:100",
            "--batch-size",
            "16",
        ])
        .arg("--out")
        .arg(file.join("run"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("a-file"));
    // Usage errors: exit 2.
    for extra in [
        vec!["--data", "imagenet:/x"],
        vec!["--data", "synthetic", "--warmup", "400"],
        vec!["--data", "synthetic", "--device", "gpu"],
        vec!["--data", "synthetic", "--devices", "cuda:0,cuda:1"],
    ] {
        let o = archc()
            .args(["train", &f, "-n", "tiny", "--out"])
            .arg(dir.path().join("r"))
            .args(&extra)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(2),
            "{extra:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // Missing CIFAR files: exit 1, the file named.
    let o = archc()
        .args([
            "eval",
            &f,
            "-n",
            "tiny",
            "--weights",
            "w.safetensors",
            "--input",
            "3x32x32",
        ])
        .arg("--data")
        .arg(format!("cifar10:{}", dir.path().display()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("data_batch_1.bin"));
}

/// A tiny CIFAR-100 in the binary format: `n` 3074-byte records (coarse label, fine label,
/// 3072 pixel bytes) with fine labels spread over 0..=99.
fn cifar100_records(n: usize, salt: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 3074);
    for i in 0..n {
        let fine = ((i * 37 + salt * 11) % 100) as u8;
        out.push(fine / 5);
        out.push(fine);
        out.extend((0..3072).map(|p| ((p * 31 + i * 97 + salt * 13) % 251) as u8));
    }
    out
}

#[test]
fn trains_a_cifar100_zoo_network_on_the_binary_format() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cifar-100-binary");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("train.bin"), cifar100_records(24, 0)).unwrap();
    let mut test = cifar100_records(9, 1);
    // One test image of the last class, so a 10-way scoring could not pass.
    test.extend({
        let mut r = vec![19u8, 99];
        r.extend(std::iter::repeat_n(128u8, 3072));
        r
    });
    std::fs::write(data.join("test.bin"), &test).unwrap();
    let zoo = Path::new(env!("CARGO_MANIFEST_DIR")).join("architectures/cifar100.arch");
    let run = dir.path().join("run");
    // DIR may be the folder's parent, as the download unpacks.
    let spec = format!("cifar100:{}", dir.path().display());
    let o = archc()
        .arg("train")
        .arg(&zoo)
        .args(["-n", "resnet18_c100", "--data", &spec, "--out"])
        .arg(&run)
        .args(["--iterations", "2", "--batch-size", "8"])
        .args(["--eval-every", "2", "--log-every", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    for f in [
        "config.json",
        "metrics.csv",
        "metrics.jsonl",
        "error.svg",
        "error.png",
        "checkpoints/last/model.safetensors",
        "checkpoints/best/model.safetensors",
    ] {
        assert!(run.join(f).is_file(), "{f}");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["classes"], 100, "{config}");
    assert_eq!(config["data"], spec.as_str(), "{config}");
    // The evaluation row at iteration 2: test top-1 and top-5 error (top-5 because there are
    // more than 10 classes), fractions of the 10 test images.
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let row: Vec<&str> = csv
        .lines()
        .filter(|l| l.starts_with("2,"))
        .find(|l| !l.split(',').nth(col("test_error")).unwrap().is_empty())
        .unwrap_or_else(|| panic!("no evaluation row at iteration 2:\n{csv}"))
        .split(',')
        .collect();
    for c in ["test_error", "test_top5_error"] {
        let v: f64 = row[col(c)]
            .parse()
            .unwrap_or_else(|e| panic!("{c}: {e}\n{csv}"));
        assert!((0.0..=1.0).contains(&v), "{c} = {v}");
        assert!(
            ((v * 10.0).round() - v * 10.0).abs() < 1e-6,
            "{c} = {v}: not k/10"
        );
    }
    // The best checkpoint evaluates over 100 classes as well.
    let o = archc()
        .arg("eval")
        .arg(&zoo)
        .args(["-n", "resnet18_c100", "--data", &spec, "--weights"])
        .arg(run.join("checkpoints/best"))
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        s.contains("top-1 error") && s.contains("top-5 error") && s.contains("(10 images"),
        "{s}"
    );
}
