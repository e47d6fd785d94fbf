//! `archc train`, `eval`, `plot` and `forward` end to end on a tiny network and synthetic data
//! (CPU). Only with the `runtime` feature (the default).
#![cfg(feature = "runtime")]

use std::path::Path;

use assert_cmd::Command;

/// A tiny residual network with batch norm (network `tiny`), shared with the runtime's tests.
const TINY: &str = include_str!("../runtime/tests/fixtures/tiny.arch");

/// The files every run folder holds after an evaluation.
const RUN_FILES: [&str; 5] = [
    "config.json",
    "metrics.csv",
    "metrics.jsonl",
    "error.svg",
    "error.png",
];

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
    for f in RUN_FILES {
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
    for f in RUN_FILES.iter().chain(&[
        "checkpoints/last/model.safetensors",
        "checkpoints/best/model.safetensors",
    ]) {
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

/// `archc train` on `tiny` with synthetic data into `out`, with `extra` arguments.
fn train_args(f: &str, out: &Path, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["train", f, "-n", "tiny", "--data", "synthetic:200"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.push("--out".into());
    v.push(out.display().to_string());
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// The metric rows of a run folder without their timing columns.
#[cfg(unix)]
fn untimed_rows(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(8).collect::<Vec<_>>().join(","))
        .collect()
}

#[cfg(unix)]
#[test]
fn sigint_and_sigterm_mid_step_save_a_checkpoint_and_exit_130() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    for signal in ["INT", "TERM"] {
        let out = dir.path().join(format!("run-{signal}"));
        let args = train_args(
            &f,
            &out,
            &[
                "--iterations",
                "100000",
                "--batch-size",
                "16",
                "--log-every",
                "1",
                "--eval-every",
                "100000",
                "--progress",
                "lines",
            ],
        );
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_archc"))
            .args(&args)
            .env("NO_COLOR", "1")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let line = line.unwrap();
                let _ = tx.send(line.clone());
            }
        });
        // Training is under way (step 3 is being computed) when the signal comes.
        let mut log = Vec::new();
        loop {
            let line = rx
                .recv_timeout(std::time::Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("no progress: {log:?}"));
            let started = line.contains("iter 2/");
            log.push(line);
            if started {
                break;
            }
        }
        let kill = std::process::Command::new("kill")
            .args(["-s", signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = child.wait().unwrap();
        reader.join().unwrap();
        log.extend(rx.try_iter());
        let log = log.join("\n");
        assert_eq!(status.code(), Some(130), "SIG{signal}: {log}");
        assert!(log.contains("interrupted at iteration"), "{log}");
        assert!(!log.contains("panicked"), "{log}");
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join("checkpoints/last/state.json")).unwrap(),
        )
        .unwrap();
        let it = state["iteration"].as_u64().unwrap();
        assert!(it >= 2, "{state}");
        // It continues from there.
        let more = (it + 1).to_string();
        let o = archc()
            .args(train_args(&f, &out, &["--resume", "--iterations", &more]))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(
            err.contains(&format!("resuming at iteration {it}")),
            "{err}"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_failing_checkpoint_write_is_reported_and_the_previous_checkpoint_kept() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let every = [
        "--batch-size",
        "16",
        "--log-every",
        "3",
        "--eval-every",
        "3",
    ];
    let whole = dir.path().join("whole");
    let run = dir.path().join("run");
    let train = |out: &Path, extra: &[&str]| {
        let mut e: Vec<&str> = extra.to_vec();
        if !e.contains(&"--resume") {
            e.extend(every);
        }
        train_args(&f, out, &e)
    };
    let o = archc()
        .args(train(&whole, &["--iterations", "9"]))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = archc()
        .args(train(&run, &["--iterations", "6"]))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let last = run.join("checkpoints/last");
    let model = std::fs::read(last.join("model.safetensors")).unwrap();
    let state = std::fs::read(last.join("state.json")).unwrap();
    // Resumed with files limited to 8 KiB (RLIMIT_FSIZE; SIGXFSZ ignored, so a write past
    // it fails with EFBIG): the metric rows fit, the checkpoint at iteration 9 does not.
    assert!(
        model.len() > 16 * 1024,
        "the weights are larger than the limit"
    );
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 8; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_archc"))
        .args(train(&run, &["--resume", "--iterations", "9"]))
        .env("NO_COLOR", "1");
    let o = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("checkpoint") && err.contains("model.safetensors"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // The previous checkpoint is intact, and the run continues from it to the same result.
    assert!(std::fs::read(last.join("model.safetensors")).unwrap() == model);
    assert_eq!(std::fs::read(last.join("state.json")).unwrap(), state);
    let o = archc()
        .args(train(&run, &["--resume", "--iterations", "9"]))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("resuming at iteration 6"), "{err}");
    assert_eq!(untimed_rows(&whole), untimed_rows(&run));
}

#[cfg(unix)]
#[test]
fn a_corrupt_checkpoint_on_resume_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let run = dir.path().join("run");
    let every = ["--batch-size", "16", "--eval-every", "2", "--iterations"];
    let o = archc()
        .args(train_args(&f, &run, &[&every[..], &["2"]].concat()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for file in ["state.json", "model.safetensors", "optimizer.safetensors"] {
        let p = run.join("checkpoints/last").join(file);
        let good = std::fs::read(&p).unwrap();
        std::fs::write(&p, &good[..good.len() / 3]).unwrap();
        let o = archc()
            .args(train_args(&f, &run, &["--resume", "--iterations", "4"]))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{file}: {err}");
        assert!(err.contains(file) && !err.contains("panicked"), "{err}");
        std::fs::write(&p, &good).unwrap();
    }
}

/// The kill loop (scripts/killloop.sh) with 3 kills on a short run: SIGKILL at random
/// moments, resume, and the same metrics and weights as a run never killed.
#[cfg(unix)]
#[test]
fn a_run_killed_three_times_ends_as_one_never_killed() {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/killloop.sh");
    let o = std::process::Command::new("bash")
        .arg(script)
        .arg("3")
        .env("ARCHC", env!("CARGO_BIN_EXE_archc"))
        .env("ITERATIONS", "24")
        .env("WORK", dir.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(out.contains("equal to the uninterrupted run"), "{out}");
}

#[test]
fn devices_train_data_parallel_and_bad_lists_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let train = |out: &Path, extra: &[&str]| {
        archc()
            .args(["train", &f, "-n", "tiny", "--data", "synthetic:200"])
            .args([
                "--batch-size",
                "16",
                "--log-every",
                "2",
                "--eval-every",
                "4",
            ])
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap()
    };
    // A dry run records the list.
    let o = train(
        &dir.path().join("dry"),
        &["--devices", "cpu,cpu", "--dry-run"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s = String::from_utf8(o.stdout).unwrap();
    let json = &s[..s.find("\ntrain: ").expect("the split names follow")];
    let c: serde_json::Value = serde_json::from_str(json).expect("the configuration");
    assert_eq!(c["devices"], serde_json::json!(["cpu", "cpu"]));
    assert_eq!(c["device"], "cpu");
    // Trains on two CPU workers, then resumes with the same list.
    let run = dir.path().join("run");
    let o = train(&run, &["--devices", "cpu,cpu", "--iterations", "4"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("data-parallel on cpu,cpu"), "{err}");
    assert!(err.contains("finished at iteration 4"), "{err}");
    let o = archc()
        .args(["train", &f, "-n", "tiny", "--data", "synthetic:200"])
        .arg("--out")
        .arg(&run)
        .args(["--resume", "--iterations", "8", "--devices", "cpu,cpu"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("resuming at iteration 4"), "{err}");
    assert!(err.contains("finished at iteration 8"), "{err}");
    let c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["devices"], serde_json::json!(["cpu", "cpu"]));
    assert_eq!(c["train"]["iterations"], 8);
    // Bad lists: exit 2, with what is wrong.
    for (extra, says) in [
        (vec!["--devices", "cpu,gpu"], "unknown device `gpu`"),
        (
            vec!["--devices", "cpu,libtorch-cpu"],
            "`cpu` and `libtorch-cpu` are devices of different kinds",
        ),
        (
            vec!["--devices", "cpu,cpu,cpu"],
            "the batch size 16 is not a multiple of the 3 devices of --devices cpu,cpu,cpu",
        ),
        (
            vec!["--device", "cpu", "--devices", "cpu,cpu"],
            "cannot be used with",
        ),
        (vec!["--devices", ""], "unknown device ``"),
    ] {
        let o = train(&dir.path().join("bad"), &extra);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(says), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
        assert!(
            !dir.path().join("bad").exists(),
            "{extra:?}: nothing written"
        );
    }
    #[cfg(not(feature = "tch"))]
    {
        let o = train(&dir.path().join("bad"), &["--devices", "cuda:0,cuda:1"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("needs the LibTorch backend"), "{err}");
    }
}

/// A plot that cannot be written (here `error.svg` is a folder) is a warning, not a checkpoint
/// error: the run finishes and its checkpoints are there.
#[test]
fn a_failed_plot_is_a_warning_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let run = dir.path().join("run");
    std::fs::create_dir_all(run.join("error.svg")).unwrap();
    let o = archc()
        .args([
            "train",
            &f,
            "-n",
            "tiny",
            "--data",
            "synthetic:200",
            "--out",
        ])
        .arg(&run)
        .args(["--iterations", "4", "--batch-size", "16"])
        .args(["--log-every", "2", "--eval-every", "2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("warning: cannot draw the error plot") && err.contains("error.svg"),
        "{err}"
    );
    assert_eq!(err.matches("cannot draw").count(), 1, "warned once: {err}");
    assert!(!err.contains("checkpoint:"), "{err}");
    assert!(err.contains("finished at iteration 4"), "{err}");
    for f in ["last", "best"] {
        assert!(run
            .join("checkpoints")
            .join(f)
            .join("model.safetensors")
            .is_file());
    }
}

/// `--resume` added to the first command line is accepted (flags equal to the stored
/// configuration); a flag whose value differs is refused, naming it with both values.
#[test]
fn resume_accepts_the_same_flags_and_names_a_differing_one() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let run = dir.path().join("run");
    let train = |extra: &[&str]| {
        archc()
            .args([
                "train",
                &f,
                "-n",
                "tiny",
                "--data",
                "synthetic:200",
                "--out",
            ])
            .arg(&run)
            .args(extra)
            .output()
            .unwrap()
    };
    let same = [
        "--recipe",
        "paper-cifar",
        "--batch-size",
        "16",
        "--seed",
        "7",
        "--lr",
        "0.05",
        "--milestones",
        "3,5",
        "--warmup",
        "1:0.01",
        "--no-augment",
        "--log-every",
        "2",
        "--eval-every",
        "2",
        "--val-fraction",
        "0.1",
    ];
    let o = train(&[&same[..], &["--iterations", "2"]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = train(&[&same[..], &["--iterations", "4", "--resume"]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("resuming at iteration 2"), "{err}");
    assert!(err.contains("finished at iteration 4"), "{err}");
    // Values that differ: each is named, with the stored and the given value; nothing runs.
    let o = train(&[
        "--iterations",
        "6",
        "--resume",
        "--batch-size",
        "32",
        "--seed",
        "8",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--batch-size is 16 in the run, 32 here")
            && err.contains("--seed is 7 in the run, 8 here"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    for (extra, says) in [
        (
            ["--warmup", "2:0.01"],
            "--warmup is 1:0.01 in the run, 2:0.01 here",
        ),
        (
            ["--recipe", "paper-imagenet"],
            "--recipe is paper-cifar in the run, paper-imagenet here",
        ),
        (
            ["--milestones", "3,6"],
            "--milestones is 3,5 in the run, 3,6 here",
        ),
    ] {
        let o = train(&[&extra[..], &["--resume"]].concat());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    }
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("checkpoints/last/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["iteration"], 4, "the refused resumes trained nothing");
}

/// `--progress quiet`: a run that succeeds prints nothing at all.
#[test]
fn quiet_prints_nothing_on_success() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let run = dir.path().join("run");
    let o = archc()
        .args(train_args(
            &f,
            &run,
            &[
                "--iterations",
                "2",
                "--batch-size",
                "16",
                "--milestones",
                "1",
            ],
        ))
        .args([
            "--log-every",
            "1",
            "--eval-every",
            "2",
            "--progress",
            "quiet",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
    assert!(run.join("checkpoints/last/model.safetensors").is_file());
}

/// `--dry-run` opens the device as a real run does: a device that cannot be used is a usage
/// error there too, and nothing is written.
#[test]
fn dry_run_checks_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let out = dir.path().join("run");
    let mut cases = vec![("gpu", "unknown device `gpu`")];
    if !cfg!(feature = "tch") {
        cases.push(("cuda:0", "needs the LibTorch backend"));
    }
    for (device, says) in cases {
        let o = archc()
            .args([
                "train",
                &f,
                "-n",
                "tiny",
                "--data",
                "synthetic:200",
                "--out",
            ])
            .arg(&out)
            .args(["--device", device, "--dry-run"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{device}: {err}");
        assert!(err.contains(says), "{device}: {err}");
        assert!(!out.exists(), "{device}: a dry run writes nothing");
    }
}

/// `--precision` and `--memory-format` are LibTorch's: on burn-flex a usage error that says so,
/// before anything is written (a dry run too).
#[test]
fn precision_and_memory_format_need_libtorch() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let out = dir.path().join("run");
    for (flags, dry) in [
        (["--precision", "bf16"], true),
        (["--precision", "f16"], false),
        (["--memory-format", "channels-last"], false),
    ] {
        let mut c = archc();
        c.args([
            "train",
            &f,
            "-n",
            "tiny",
            "--data",
            "synthetic:200",
            "--out",
        ])
        .arg(&out)
        .args(["--device", "cpu", "--iterations", "1"])
        .args(flags);
        if dry {
            c.arg("--dry-run");
        }
        let o = c.output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
        assert!(err.contains("need LibTorch"), "{flags:?}: {err}");
        assert!(!out.exists(), "{flags:?}: nothing written");
    }
}

/// A short run with the default intervals: ten metric rows and five evaluations, and a warning
/// that the recipe's milestones lie past its end. Given intervals are kept; with --epochs the
/// intervals fit the length the epochs come to.
#[test]
fn short_runs_scale_the_default_intervals_and_warn_of_late_milestones() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let run = dir.path().join("run");
    let train = |out: &Path, extra: &[&str]| {
        archc()
            .args([
                "train",
                &f,
                "-n",
                "tiny",
                "--data",
                "synthetic:200",
                "--out",
            ])
            .arg(out)
            .args(["--batch-size", "16", "--progress", "lines"])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = train(&run, &["--iterations", "20"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(
            "warning: the learning-rate milestones 32000, 48000 lie past the end of the run \
             (20 iterations)"
        ),
        "{err}"
    );
    let rows = train_rows(&run);
    let at = |col: &str| -> Vec<u64> {
        rows.iter()
            .filter(|r| !r[col].is_null())
            .map(|r| r["iteration"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        at("train_loss"),
        (1..=10).map(|i| 2 * i).collect::<Vec<_>>()
    );
    assert_eq!(at("val_error"), vec![4, 8, 12, 16, 20]);
    assert_eq!(err.matches("iter ").count(), 10, "a line per row: {err}");
    // Given intervals are kept; --epochs: 2 epochs of 180 / 16 = 11 batches, 22 iterations.
    let dry = |extra: &[&str]| -> serde_json::Value {
        let o = train(&dir.path().join("dry"), &[extra, &["--dry-run"]].concat());
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let s = String::from_utf8(o.stdout).unwrap();
        serde_json::from_str(&s[..s.find("\ntrain: ").unwrap()]).unwrap()
    };
    let c = dry(&[
        "--iterations",
        "20",
        "--log-every",
        "7",
        "--eval-every",
        "9",
    ]);
    assert_eq!(
        (
            c["train"]["log_every"].clone(),
            c["train"]["eval_every"].clone()
        ),
        (7.into(), 9.into())
    );
    let c = dry(&["--epochs", "2"]);
    assert_eq!(c["train"]["iterations"], 22);
    assert_eq!(
        (
            c["train"]["log_every"].clone(),
            c["train"]["eval_every"].clone()
        ),
        (2.into(), 4.into())
    );
    let c = dry(&["--milestones", "10"]);
    assert_eq!(
        (
            c["train"]["log_every"].clone(),
            c["train"]["eval_every"].clone()
        ),
        (100.into(), 1000.into()),
        "the recipe's run keeps the recipe's intervals"
    );
}

/// archc's burn-flex kernels (the default) and Burn's generic path (`ARCHC_FLEX_KERNELS=0`)
/// train `tiny` (convolutions, batch norm with ReLU, option B shortcuts) alike: every logged
/// training loss within 1e-4 relative over 6 steps, both float32 computations of the same
/// step in a different order.
#[test]
fn flex_kernels_train_as_burns_generic_path() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let losses = |kernels: &str| {
        let out = dir.path().join(format!("run-{kernels}"));
        let args = [
            "--iterations",
            "6",
            "--log-every",
            "1",
            "--batch-size",
            "16",
        ];
        archc()
            .args(train_args(&f, &out, &args))
            .args(["--progress", "quiet", "--val-fraction", "0"])
            .env("ARCHC_FLEX_KERNELS", kernels)
            .assert()
            .success();
        train_rows(&out)
            .iter()
            .filter_map(|r| r["train_loss"].as_f64())
            .collect::<Vec<f64>>()
    };
    let (ours, burns) = (losses("1"), losses("0"));
    assert_eq!(ours.len(), 6, "{ours:?}");
    assert_eq!(ours.len(), burns.len());
    for (a, b) in ours.iter().zip(&burns) {
        assert!(
            (a - b).abs() <= 1e-4 * a.abs().max(1.0),
            "{ours:?} against {burns:?}"
        );
    }
    // Two different computations (the environment variable is read), agreeing to rounding.
    assert_ne!(
        ours, burns,
        "the same bits: were the kernels really turned off?"
    );
    assert!(ours.first() != ours.last());
}

/// The metric rows of a run folder (`metrics.jsonl`).
fn train_rows(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `train --help` gives the default of every option that takes a value (the three required
/// ones have none).
#[test]
fn train_help_states_every_default() {
    let o = archc().args(["train", "--help"]).output().unwrap();
    assert!(o.status.success());
    let help = String::from_utf8(o.stdout).unwrap();
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        if t.starts_with('-') && line.len() - t.len() <= 6 {
            entries.push((t.to_string(), String::new()));
        } else if let Some(e) = entries.last_mut() {
            e.1.push(' ');
            e.1.push_str(t);
        }
    }
    // The options are found: their lines start with a dash, indented less than descriptions.
    let options: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    for o in ["--lr <", "--seed <", "--resume", "--progress <"] {
        assert!(options.iter().any(|x| x.starts_with(o)), "{o}: {options:?}");
    }
    let mut missing = Vec::new();
    for (option, text) in &entries {
        let takes_value = option.contains('<');
        let required = ["--network", "--data", "--out"]
            .iter()
            .any(|r| option.contains(&format!("{r} <")));
        if takes_value && !required && !format!("{option} {text}").contains("default") {
            missing.push(option.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "no default stated for {missing:?}:\n{help}"
    );
}

/// The f32 tensor `name` of a safetensors file: shape and values.
fn read_f32(path: &Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let buf = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&buf).unwrap();
    let t = st.tensor(name).unwrap();
    let v = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (t.shape().to_vec(), v)
}

fn write_f32(path: &Path, name: &str, shape: Vec<usize>, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, &bytes).unwrap();
    safetensors::serialize_to_file([(name, view)], None, path).unwrap();
}

/// `forward --weights RUN/checkpoints/last` reads the checkpoint folder, as `eval` does, and
/// subtracts the checkpoint's mean: its logits are those of the bare weights on the input
/// minus the mean.
#[test]
fn forward_takes_a_checkpoint_folder_and_applies_its_mean() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let run = dir.path().join("run");
    let o = archc()
        .args(train_args(
            &f,
            &run,
            &[
                "--iterations",
                "2",
                "--batch-size",
                "16",
                "--eval-every",
                "2",
            ],
        ))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ckpt = run.join("checkpoints/last");
    let x: Vec<f32> = (0..2 * 3 * 16 * 16)
        .map(|i| (i % 11) as f32 / 11.0)
        .collect();
    let input = dir.path().join("x.safetensors");
    write_f32(&input, "input", vec![2, 3, 16, 16], &x);
    let forward = |weights: &Path, input: &Path, output: &Path| {
        let o = archc()
            .args(["forward", &f, "-n", "tiny", "--weights"])
            .arg(weights)
            .arg("--input")
            .arg(input)
            .arg("--output")
            .arg(output)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        read_f32(output, "output")
    };
    let (shape, from_folder) = forward(&ckpt, &input, &dir.path().join("y.safetensors"));
    assert_eq!(shape, [2, 10]);
    // The same weights alone (no mean beside them), on the input with the mean taken off.
    let bare = dir.path().join("bare.safetensors");
    std::fs::copy(ckpt.join("model.safetensors"), &bare).unwrap();
    let (mshape, mean) = read_f32(&ckpt.join("mean.safetensors"), "mean");
    assert_eq!(mshape, [3, 16, 16]);
    assert!(mean.iter().any(|m| m.abs() > 1e-3), "a mean that matters");
    let centred: Vec<f32> = x
        .iter()
        .enumerate()
        .map(|(i, v)| v - mean[i % mean.len()])
        .collect();
    let input_c = dir.path().join("xc.safetensors");
    write_f32(&input_c, "input", vec![2, 3, 16, 16], &centred);
    let (_, by_hand) = forward(&bare, &input_c, &dir.path().join("yc.safetensors"));
    let (_, uncentred) = forward(&bare, &input, &dir.path().join("yu.safetensors"));
    let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| (p - q).abs() <= 1e-4);
    assert!(
        close(&from_folder, &by_hand),
        "{from_folder:?}\n{by_hand:?}"
    );
    assert!(
        !close(&from_folder, &uncentred),
        "the mean changes the logits"
    );
    // The weights file inside the folder gets the same mean.
    let (_, from_file) = forward(
        &ckpt.join("model.safetensors"),
        &input,
        &dir.path().join("yf.safetensors"),
    );
    assert_eq!(from_file, from_folder);
}

/// A two-iteration run of `tiny` on synthetic data in `dir/run`; its folder.
fn trained_tiny(dir: &Path, f: &str) -> std::path::PathBuf {
    let run = dir.join("run");
    let o = archc()
        .args(["train", f, "-n", "tiny", "--data", "synthetic:200", "--out"])
        .arg(&run)
        .args([
            "--iterations",
            "2",
            "--batch-size",
            "16",
            "--eval-every",
            "2",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    run
}

/// `forward` compiles a network with global pooling at the input tensor's shape (24x24 for a
/// network declared at 16x16): the logits equal those of `--input-shape 3x24x24`. A network
/// whose classifier reads a flattened map keeps the error, naming the parameter that would
/// change.
#[test]
fn forward_compiles_at_the_input_tensors_shape_when_the_network_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let run = trained_tiny(dir.path(), &f);
    // The weights alone: the checkpoint's per-pixel mean is for 16x16 images.
    let weights = dir.path().join("bare.safetensors");
    std::fs::copy(run.join("checkpoints/last/model.safetensors"), &weights).unwrap();
    let x: Vec<f32> = (0..2 * 3 * 24 * 24)
        .map(|i| (i % 13) as f32 / 13.0)
        .collect();
    let input = dir.path().join("x24.safetensors");
    write_f32(&input, "input", vec![2, 3, 24, 24], &x);
    let forward = |file: &str, net: &str, extra: &[&str], output: &Path| {
        archc()
            .args(["forward", file, "-n", net, "--weights"])
            .arg(&weights)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(output)
            .args(extra)
            .output()
            .unwrap()
    };
    let y = dir.path().join("y.safetensors");
    let o = forward(&f, "tiny", &[], &y);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (shape, at_tensor) = read_f32(&y, "output");
    assert_eq!(shape, [2, 10]);
    let y2 = dir.path().join("y2.safetensors");
    let o = forward(&f, "tiny", &["--input-shape", "3x24x24"], &y2);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (_, forced) = read_f32(&y2, "output");
    assert_eq!(at_tensor, forced);

    let flat = dir.path().join("flat.arch");
    std::fs::write(
        &flat,
        "network flat {\n    input 3x16x16\n    classes 10\n    stem conv 3x3, 8\n    \
         head flatten, fc classes\n}\n",
    )
    .unwrap();
    let o = forward(
        flat.to_str().unwrap(),
        "flat",
        &[],
        &dir.path().join("z.safetensors"),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("takes input [N, 3, 16, 16] (N >= 1), got [2, 3, 24, 24]")
            && err.contains("cannot be compiled at 3x24x24")
            && err.contains("weight` would be [10, 4608], not [10, 2048]"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// `eval --per-class` gives each class's top-1 error and the confusion matrix, as text and in
/// JSON; the matrix holds every image once, its off-diagonal total is top-1's error count and
/// each class's error is its row's share off the diagonal.
#[test]
fn eval_per_class_gives_each_classes_error_and_the_confusion_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let run = trained_tiny(dir.path(), &f);
    let eval = |extra: &[&str]| {
        let o = archc()
            .args([
                "eval",
                &f,
                "-n",
                "tiny",
                "--data",
                "synthetic:200",
                "--weights",
            ])
            .arg(run.join("checkpoints/last"))
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let json: serde_json::Value =
        serde_json::from_str(&eval(&["--per-class", "--format", "json"])).unwrap();
    let images = json["images"].as_u64().unwrap();
    let top1 = json["top1_error"].as_f64().unwrap();
    let m: Vec<Vec<u64>> = serde_json::from_value(json["confusion"].clone()).unwrap();
    assert_eq!(m.len(), 10);
    assert!(m.iter().all(|r| r.len() == 10));
    let total: u64 = m.iter().flatten().sum();
    assert_eq!(total, images);
    let wrong: u64 = (0..10).map(|i| m[i].iter().sum::<u64>() - m[i][i]).sum();
    assert!((wrong as f64 / images as f64 - top1).abs() < 1e-9, "{json}");
    let per = json["per_class"].as_array().unwrap();
    assert_eq!(per.len(), 10);
    for (k, p) in per.iter().enumerate() {
        let n: u64 = m[k].iter().sum();
        assert_eq!(p["class"], k);
        assert_eq!(p["images"].as_u64(), Some(n));
        if n > 0 {
            let e = 1.0 - m[k][k] as f64 / n as f64;
            assert!((p["error"].as_f64().unwrap() - e).abs() < 1e-9, "{json}");
        } else {
            assert!(p["error"].is_null());
        }
    }
    // Without --per-class the JSON has the totals only; the text has the table and matrix.
    let plain: serde_json::Value = serde_json::from_str(&eval(&["--format", "json"])).unwrap();
    assert_eq!(plain["top1_error"], json["top1_error"]);
    assert!(plain.get("confusion").is_none());
    let text = eval(&["--per-class"]);
    assert!(text.contains("per class (top-1 error)"), "{text}");
    assert!(
        text.contains("confusion matrix (rows: label, columns: predicted)"),
        "{text}"
    );
    let row0: Vec<String> = m[0].iter().map(u64::to_string).collect();
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == std::iter::once("0")
                    .chain(row0.iter().map(String::as_str))
                    .collect::<Vec<_>>()),
        "{text}"
    );
}

/// The texts of an SVG: (content, x, text-anchor).
fn svg_texts(svg: &str) -> Vec<(String, f64, String)> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| {
            (
                n.text().unwrap_or("").trim().to_string(),
                n.attribute("x").and_then(|x| x.parse().ok()).unwrap_or(0.0),
                n.attribute("text-anchor").unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// `plot` draws the training loss and the validation error as curves of their own, labels the
/// iteration axis with whole numbers (`10`, not `10.0`), puts the legend right of the data
/// (every legend text right of the last tick label) and takes `-o` as `graph -o` does.
#[test]
fn plot_has_loss_and_validation_curves_integer_ticks_and_the_legend_outside() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let run = dir.path().join("run");
    let o = archc()
        .args(train_args(
            &f,
            &run,
            &[
                "--iterations",
                "40",
                "--batch-size",
                "8",
                "--log-every",
                "5",
            ],
        ))
        .args(["--eval-every", "10", "--val-fraction", "0.1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let fig = dir.path().join("fig.svg");
    let o = archc()
        .arg("plot")
        .arg(&run)
        .arg("--out")
        .arg(&fig)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(&fig).unwrap();
    let texts = svg_texts(&svg);
    let find = |t: &str| {
        texts
            .iter()
            .find(|x| x.0 == t)
            .unwrap_or_else(|| panic!("no text `{t}` in {texts:?}"))
    };
    let legend: Vec<_> = ["run train", "run test", "run validation", "run loss"]
        .iter()
        .map(|t| find(t).1)
        .collect();
    find("training loss");
    // The iteration ticks: centred numbers, all whole, up to 40.
    let ticks: Vec<&(String, f64, String)> = texts
        .iter()
        .filter(|t| t.2 == "middle" && t.0.parse::<f64>().is_ok())
        .collect();
    assert!(ticks.iter().any(|t| t.0 == "40"), "{texts:?}");
    assert!(
        ticks.iter().all(|t| t.0.parse::<u64>().is_ok()),
        "{ticks:?}"
    );
    let right = ticks.iter().map(|t| t.1).fold(0.0, f64::max);
    assert!(legend.iter().all(|&x| x > right), "{legend:?} vs {right}");
    // -o is --out.
    let short = dir.path().join("short.svg");
    let o = archc()
        .arg("plot")
        .arg(&run)
        .arg("-o")
        .arg(&short)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(&short).unwrap(), svg);
}

/// Image folders: 16x16 PNGs get the CIFAR augmentation by default (they got ImageNet's scale
/// augmentation before), recorded in config.json with the flip; `--augment imagenet --no-flip`
/// are recorded too and a resume may repeat them; a `train/` + `val/` folder says in the
/// run's first lines which part is used for what.
#[test]
fn augmentation_fits_the_images_and_the_first_lines_name_the_splits() {
    let dir = tempfile::tempdir().unwrap();
    let f = tiny(dir.path());
    let data = dir.path().join("digits");
    for split in ["train", "val"] {
        for k in 0..10u32 {
            let cd = data.join(split).join(format!("c{k}"));
            std::fs::create_dir_all(&cd).unwrap();
            for i in 0..4u32 {
                let img = image::RgbImage::from_fn(16, 16, |x, y| {
                    image::Rgb([(k * 20 + i + x) as u8, y as u8, 9])
                });
                img.save(cd.join(format!("{i}.png"))).unwrap();
            }
        }
    }
    let spec = format!("folder:{}", data.display());
    let train = |out: &Path, extra: &[&str]| {
        archc()
            .args(["train", &f, "-n", "tiny", "--data", &spec, "--out"])
            .arg(out)
            .args([
                "--iterations",
                "2",
                "--batch-size",
                "8",
                "--eval-every",
                "2",
            ])
            .args(["--progress", "lines"])
            .args(extra)
            .output()
            .unwrap()
    };
    let config = |out: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap()
    };
    let run = dir.path().join("run");
    let o = train(&run, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let c = config(&run);
    assert_eq!(c["train"]["augment"], "cifar", "{c}");
    assert_eq!(c["train"]["flip"], true, "{c}");
    let line = err
        .lines()
        .find(|l| l.starts_with("data: "))
        .unwrap_or_else(|| panic!("no data line:\n{err}"));
    assert!(
        line.contains("training on folder train/ (40 images, 10 classes) (36 for training)")
            && line.contains("for validation")
            && line.contains("test on folder val/ (40 images, 10 classes)")
            && line.ends_with("augmentation cifar"),
        "{line}"
    );

    // `eval` of the run's checkpoint reads its config.json: the same transform as the run's
    // own evaluation (input-size images as they are), so the same test error.
    let o = archc()
        .args([
            "eval",
            &f,
            "-n",
            "tiny",
            "--data",
            &spec,
            "--format",
            "json",
            "--weights",
        ])
        .arg(run.join("checkpoints/last"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = train_rows(&run);
    let last = rows
        .iter()
        .rev()
        .find(|r| !r["test_error"].is_null())
        .unwrap();
    assert_eq!(e["top1_error"], last["test_error"], "{e} {last}");
    // The same checkpoint away from its run folder: no config.json, so the folder images are
    // resized and centre-cropped (ImageNet's evaluation), which changes the loss.
    let away = dir.path().join("away/checkpoints/last");
    std::fs::create_dir_all(&away).unwrap();
    for file in ["model.safetensors", "mean.safetensors"] {
        std::fs::copy(run.join("checkpoints/last").join(file), away.join(file)).unwrap();
    }
    let o = archc()
        .args([
            "eval",
            &f,
            "-n",
            "tiny",
            "--data",
            &spec,
            "--format",
            "json",
            "--weights",
        ])
        .arg(&away)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let resized: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_ne!(resized["loss"], e["loss"], "{resized} {e}");

    let run2 = dir.path().join("run2");
    let flags = ["--augment", "imagenet", "--no-flip"];
    let o = train(&run2, &flags);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let c = config(&run2);
    assert_eq!(c["train"]["augment"], "imagenet", "{c}");
    assert_eq!(c["train"]["flip"], false, "{c}");
    assert!(err.contains("augmentation imagenet without flips"), "{err}");
    // Resuming with the same flags is accepted; another augmentation is refused, named.
    let o = archc()
        .args(["train", &f, "-n", "tiny", "--data", &spec, "--out"])
        .arg(&run2)
        .args(["--iterations", "4", "--resume", "--augment", "cifar"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--augment is imagenet in the run, cifar here"),
        "{err}"
    );
    let mut again: Vec<&str> = vec!["--resume"];
    again.extend(flags);
    let o = archc()
        .args(["train", &f, "-n", "tiny", "--data", &spec, "--out"])
        .arg(&run2)
        .args([
            "--iterations",
            "4",
            "--batch-size",
            "8",
            "--eval-every",
            "2",
        ])
        .args(&again)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
