//! The training cost report (`archc report --training`, issue 19).
//!
//! `agrees_with_pytorch` checks the figures against what PyTorch eager does, as
//! `scripts/training_cost.py` measures it (torch 2.9.0, torchvision 0.24.0; twelve networks
//! of ten families, two batch sizes each). It is `#[ignore]`d in a plain `cargo test`
//! (there is no PyTorch there); CI's parity stage runs it with `ARCHC_TRAINING_COST_DIR=DIR
//! cargo test --test training_cost -- --ignored` after the script, and without the
//! measurements it fails, never passing vacuously. What it holds archc to:
//!
//! - **Saved bytes, within 10% of PyTorch's** (the bound). The measurement is the
//!   distinct storages autograd saves in the forward and the loss, parameters and buffers
//!   excluded, on the CPU. One convention differs and is taken out of the measurement first:
//!   CPU dropout keeps an f32 mask where CUDA (and archc) keep a bool one, 3 bytes an element
//!   the script reports. In practice archc agrees to the byte, but for EfficientNet-B0, whose
//!   stochastic depth archc's zoo file leaves out (9 per-sample factors, 36 bytes a sample).
//! - **FLOPs, exactly.** `FlopCounterMode` counts convolutions and matrix products only, 2
//!   FLOPs per multiply-add, no biases, no batch norm, activations, pools, additions or loss:
//!   archc's `2 × forward_macs` and `2 × (backward_input_macs + backward_weight_macs)` are the
//!   same convention (archc's full `forward_flops` and `backward_flops` count everything on
//!   top). Both skip the input gradient of the first convolution (the image needs none). One
//!   difference is PyTorch's: torch 2.9's counter counts a grouped convolution's weight
//!   gradient as if it were not grouped (groups × the multiply-adds done); the script
//!   measures that excess with the counter on each grouped convolution alone, and it is
//!   subtracted.
//! - **Peak memory, within 10%** of the most tensor memory the profiler's memory timeline
//!   sees live in one CPU training step (SGD with momentum and weight decay, foreach, state
//!   allocated, gradients set to None). Measured on the CPU, where no cuDNN workspace exists;
//!   archc models neither workspaces nor the allocator's rounding.

use std::path::{Path, PathBuf};

use archc_compiler::training::{Options, Precision, TrainingModel, TrainingTotals};
use archc_compiler::{build_network, load_path, Overrides, TypedGraph};
use assert_cmd::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn network(file: &Path, name: &str, ov: &Overrides) -> TypedGraph {
    let (sources, prog) = load_path(file);
    let prog = match prog {
        Ok(p) => p,
        Err(archc_compiler::LoadError::Diagnostics(d)) => panic!("{}", d.render_plain(&sources)),
        Err(e) => panic!("{e:?}"),
    };
    build_network(&prog, name, ov)
        .unwrap_or_else(|d| panic!("{name}: {}", d.render_plain(&sources)))
}

/// Every network of every zoo file, with its name.
fn zoo() -> Vec<(String, TypedGraph)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("architectures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "arch"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let (sources, prog) = load_path(&f);
        let prog = prog.unwrap_or_else(|_| panic!("{}", f.display()));
        for n in &prog.root_networks {
            let t = build_network(&prog, n, &Overrides::default())
                .unwrap_or_else(|d| panic!("{n}: {}", d.render_plain(&sources)));
            out.push((n.clone(), t));
        }
    }
    assert!(out.len() > 90, "the zoo has {} networks", out.len());
    out
}

fn u(v: &serde_json::Value) -> u128 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}")) as u128
}

fn rel(a: u128, b: u128) -> f64 {
    (a as f64 - b as f64) / b as f64
}

#[test]
#[ignore = "needs the measurements of scripts/training_cost.py: ARCHC_TRAINING_COST_DIR"]
fn agrees_with_pytorch() {
    let dir = std::env::var("ARCHC_TRAINING_COST_DIR").expect(
        "ARCHC_TRAINING_COST_DIR must name the folder scripts/training_cost.py wrote (python3 scripts/training_cost.py DIR)",
    );
    let path = Path::new(&dir).join("training_cost.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    let mut failures = Vec::new();
    let mut networks = std::collections::BTreeSet::new();
    println!("PyTorch {}", doc["torch"]);
    for c in cases {
        let name = c["network"].as_str().unwrap();
        networks.insert(name.to_string());
        let input: Vec<u64> = c["input"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        let batch = c["batch_size"].as_u64().unwrap();
        let t = network(
            &root().join(c["file"].as_str().unwrap()),
            name,
            &Overrides {
                input: Some(input.clone()),
                classes: None,
            },
        );
        let params: u128 = t.nodes.iter().map(|n| n.cost.params).sum();
        let model = TrainingModel::new(&t, Options::default());
        let tt = model.totals(batch);
        let mut line = format!("{name:>22} {input:?} batch {batch:>2}:");
        if params != u(&c["params"]) {
            failures.push(format!(
                "{name}: {params} parameters, PyTorch {}",
                c["params"]
            ));
        }
        // Saved bytes, CUDA's dropout masks (1 byte an element) in both.
        let torch = u(&c["saved_bytes"]) - u(&c["cpu_dropout_excess"]);
        let d = rel(tt.saved_activation_bytes, torch);
        line += &format!(
            " saved {} B, PyTorch {torch} B ({:+.4}%)",
            tt.saved_activation_bytes,
            d * 100.0
        );
        if d.abs() > 0.10 {
            failures.push(format!(
                "{name} at batch {batch}: saved bytes {:+.2}%",
                d * 100.0
            ));
        }
        if !c["forward_flops"].is_null() {
            let fwd = u(&c["forward_flops"]);
            let bwd = u(&c["backward_flops"]) - u(&c["grouped_weight_grad_excess"]);
            let (a_fwd, a_bwd) = (
                2 * tt.forward_macs,
                2 * (tt.backward_input_macs + tt.backward_weight_macs),
            );
            line += &format!("; FLOPs forward {a_fwd} ({fwd}), backward {a_bwd} ({bwd})");
            if a_fwd != fwd || a_bwd != bwd {
                failures.push(format!(
                    "{name} at batch {batch}: FLOPs forward {a_fwd} against {fwd}, backward {a_bwd} against {bwd}"
                ));
            }
        }
        if !c["peak_bytes"].is_null() {
            let torch = u(&c["peak_bytes"]);
            let d = rel(tt.peak_bytes, torch);
            line += &format!(
                "; peak {} B ({}), PyTorch {torch} B ({:+.2}%)",
                tt.peak_bytes,
                tt.peak_phase,
                d * 100.0
            );
            if d.abs() > 0.10 {
                failures.push(format!("{name} at batch {batch}: peak {:+.2}%", d * 100.0));
            }
        }
        println!("{line}");
    }
    assert!(networks.len() >= 10, "{networks:?}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The figures add up: backward = input + weight gradients, the layers sum to the totals, the
/// peak holds at least what is resident with the saved tensors or the gradients, bytes grow
/// with the batch by a constant step (the per-sample part; BN statistics and the loss's
/// total weights are per batch) and FLOPs in proportion — for every network of the zoo.
#[test]
fn every_zoo_network_adds_up() {
    for (name, t) in zoo() {
        let model = TrainingModel::new(&t, Options::default());
        let r = model.report(3);
        let tt = &r.totals;
        assert_eq!(
            tt.backward_flops,
            tt.backward_input_flops + tt.backward_weight_flops,
            "{name}"
        );
        let sum = |f: fn(&archc_compiler::training::TrainingLayer) -> u128| {
            r.layers.iter().map(f).sum::<u128>()
        };
        assert_eq!(sum(|l| l.saved_bytes), tt.saved_activation_bytes, "{name}");
        assert_eq!(sum(|l| l.forward_flops), tt.forward_flops, "{name}");
        assert_eq!(
            sum(|l| l.backward_input_flops),
            tt.backward_input_flops,
            "{name}"
        );
        assert_eq!(
            sum(|l| l.backward_weight_flops),
            tt.backward_weight_flops,
            "{name}"
        );
        let resident = tt.parameter_bytes + tt.buffer_bytes + tt.optimizer_state_bytes;
        assert!(
            tt.peak_bytes >= resident + tt.saved_activation_bytes,
            "{name}: peak {} < resident {resident} + saved {}",
            tt.peak_bytes,
            tt.saved_activation_bytes
        );
        assert!(tt.peak_bytes >= resident + tt.gradient_bytes, "{name}");
        assert!(
            tt.saved_activation_bytes > 0 && tt.forward_flops > 0,
            "{name}"
        );
        assert!(
            tt.backward_weight_flops > 0 && tt.backward_input_flops > 0,
            "{name}"
        );
        // The momentum buffers are the size of the parameters and their gradients.
        assert_eq!(tt.optimizer_state_bytes, tt.parameter_bytes, "{name}");
        assert_eq!(tt.gradient_bytes, tt.parameter_bytes, "{name}");
        let at: Vec<TrainingTotals> = [1, 2, 3].iter().map(|&b| model.totals(b)).collect();
        let step = at[1].saved_activation_bytes - at[0].saved_activation_bytes;
        assert_eq!(
            at[2].saved_activation_bytes - at[1].saved_activation_bytes,
            step,
            "{name}"
        );
        assert!(step > 0, "{name}");
        for k in 0..3 {
            let b = (k + 1) as u128;
            assert_eq!(at[k].forward_flops, b * at[0].forward_flops, "{name}");
            assert_eq!(at[k].backward_flops, b * at[0].backward_flops, "{name}");
            assert!(k == 0 || at[k].peak_bytes >= at[k - 1].peak_bytes, "{name}");
        }
    }
}

/// `--memory`'s answer is the largest batch whose peak, by the same rule as the report's
/// `peak_bytes`, fits: one more sample does not. For every network of the zoo, at a memory
/// between the peaks of b and b + 1 samples.
#[test]
fn the_fit_is_the_largest_batch_that_fits() {
    for (name, t) in zoo() {
        let model = TrainingModel::new(&t, Options::default());
        // Where the activations are what grows (a small MLP's optimizer step is the peak up
        // to some thousands of samples).
        let b = [300, 3_000, 30_000]
            .into_iter()
            .find(|&b| model.peak(b + 1).0 > model.peak(b).0)
            .unwrap_or_else(|| panic!("{name}: the peak does not grow"));
        let (p, next) = (model.peak(b).0, model.peak(b + 1).0);
        let fit = model.fit(p + (next - p) / 2);
        assert_eq!(fit.max_batch_size, Some(b), "{name}");
        assert_eq!(fit.peak_bytes, model.totals(b).peak_bytes, "{name}");
        assert_eq!(fit.next_peak_bytes, Some(next), "{name}");
        // Below what one sample needs, nothing fits.
        let one = model.peak(1).0;
        assert_eq!(model.fit(one - 1).max_batch_size, None, "{name}");
        // At that memory: batch 1, or more where the optimizer step's peak (no activations)
        // is the larger up to some batch (AlexNet's 61 million parameters).
        let b = model.fit(one).max_batch_size.unwrap();
        assert!(
            model.peak(b).0 == one && model.peak(b + 1).0 > one,
            "{name}"
        );
    }
}

/// The precisions: bf16 halves parameters and activations; f16-mixed keeps f32 parameters,
/// gradients and state, halves the activations and adds the f16 weight copies.
#[test]
fn precisions_and_optimizers() {
    let t = network(
        &root().join("architectures/resnet.arch"),
        "resnet50_tv",
        &Overrides::default(),
    );
    let at = |precision, optimizer| {
        TrainingModel::new(
            &t,
            Options {
                optimizer,
                precision,
            },
        )
        .totals(32)
    };
    use archc_compiler::training::Optimizer::{Adam, Momentum, Sgd};
    let f32 = at(Precision::F32, Momentum);
    let bf16 = at(Precision::Bf16, Momentum);
    let mixed = at(Precision::F16Mixed, Momentum);
    assert_eq!(bf16.parameter_bytes * 2, f32.parameter_bytes);
    assert_eq!(mixed.parameter_bytes, f32.parameter_bytes);
    assert_eq!(mixed.gradient_bytes, f32.gradient_bytes);
    assert!(mixed.weight_copy_bytes > 0 && f32.weight_copy_bytes == 0);
    // Conv and fc weights: all but BN's scale and shift, half as large.
    assert!(mixed.weight_copy_bytes < f32.parameter_bytes / 2);
    assert!(mixed.weight_copy_bytes > f32.parameter_bytes / 2 * 99 / 100);
    // Activations halve; max-pool indices, BN statistics and targets do not.
    assert!(bf16.saved_activation_bytes < f32.saved_activation_bytes * 51 / 100);
    assert!(bf16.saved_activation_bytes > f32.saved_activation_bytes / 2);
    assert_eq!(at(Precision::F32, Sgd).optimizer_state_bytes, 0);
    assert_eq!(
        at(Precision::F32, Adam).optimizer_state_bytes,
        2 * f32.parameter_bytes
    );
    // The figure: PyTorch eager keeps 2.56 GiB for resnet50 at batch 32.
    assert_eq!(
        format!(
            "{:.2}",
            f32.saved_activation_bytes as f64 / (1u64 << 30) as f64
        ),
        "2.56"
    );
}

fn archc() -> Command {
    let mut c = Command::cargo_bin("archc").unwrap();
    c.env("NO_COLOR", "1");
    c
}

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let out = archc().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

const R50: [&str; 4] = ["report", "architectures/resnet.arch", "-n", "resnet50_tv"];

#[test]
fn json_has_the_training_fields() {
    let (code, out, err) = run(&[
        &R50[..],
        &["--training", "--batch-size", "32", "-f", "json"],
    ]
    .concat());
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let t = &v[0]["training"];
    for field in [
        "batch_size",
        "forward_flops",
        "backward_flops",
        "backward_input_flops",
        "backward_weight_flops",
        "forward_macs",
        "backward_input_macs",
        "backward_weight_macs",
        "optimizer_flops",
        "saved_activation_bytes",
        "parameter_bytes",
        "buffer_bytes",
        "gradient_bytes",
        "optimizer_state_bytes",
        "weight_copy_bytes",
        "peak_bytes",
    ] {
        assert!(t[field].is_u64(), "{field}: {}", t[field]);
    }
    assert_eq!(t["batch_size"], 32);
    assert_eq!(t["optimizer"], "momentum");
    assert_eq!(t["precision"], "f32");
    assert!(t["layers"].as_array().unwrap().len() > 100);
    assert!(t["stages"].as_array().unwrap().len() == 6);
    // The inference report is all there too.
    assert_eq!(v[0]["params"], 25_557_032);
    assert!(v[0].get("training_sweep").is_none());
    // Without --training, no training fields.
    let (_, out, _) = run(&[&R50[..], &["-f", "json"]].concat());
    assert!(!out.contains("\"training\""));
}

#[test]
fn batch_sizes_give_one_column_each() {
    let (code, out, err) = run(&[&R50[..], &["--training", "--batch-size", "1,32,256"]].concat());
    assert_eq!(code, Some(0), "{err}");
    let header = out.lines().find(|l| l.starts_with("figure")).unwrap();
    assert!(
        header.contains("batch 1") && header.contains("batch 32") && header.contains("batch 256"),
        "{out}"
    );
    let (_, out, _) = run(&[
        &R50[..],
        &["--training", "--batch-size", "1,32,256", "-f", "json"],
    ]
    .concat());
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sweep = v[0]["training_sweep"].as_array().unwrap();
    let batches: Vec<u64> = sweep
        .iter()
        .map(|s| s["batch_size"].as_u64().unwrap())
        .collect();
    assert_eq!(batches, [1, 32, 256]);
    assert_eq!(v[0]["training"]["batch_size"], 1);
    assert!(sweep[2]["peak_bytes"].as_u64() > sweep[1]["peak_bytes"].as_u64());
    // Markdown too.
    let (code, md, _) = run(&[
        &R50[..],
        &["--training", "--batch-size", "1,32", "-f", "markdown"],
    ]
    .concat());
    assert_eq!(code, Some(0));
    assert!(md.contains("| figure | batch 1 | batch 32 |"), "{md}");
}

#[test]
fn memory_prints_the_largest_batch_that_fits() {
    let (code, out, err) = run(&[&R50[..], &["--training", "--memory", "80GiB"]].concat());
    assert_eq!(code, Some(0), "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("Fits in 80.00 GiB"))
        .unwrap_or_else(|| panic!("{out}"));
    let (_, json, _) =
        run(&[&R50[..], &["--training", "--memory", "80GiB", "-f", "json"]].concat());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let fit = &v[0]["training"]["fit"];
    assert_eq!(fit["memory_bytes"], 80u64 << 30);
    let b = fit["max_batch_size"].as_u64().unwrap();
    let text = format!(
        "batch {} at most",
        archc_compiler::report::thousands(b as u128)
    );
    assert!(line.contains(&text), "{line}");
    // By the same rule as the report's peak: the batch fits, one more does not.
    let peak_at = |b: u64| {
        let (_, json, _) = run(&[
            &R50[..],
            &["--training", "--batch-size", &b.to_string(), "-f", "json"],
        ]
        .concat());
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v[0]["training"]["peak_bytes"].as_u64().unwrap()
    };
    assert!(peak_at(b) <= 80 << 30);
    assert!(peak_at(b + 1) > 80 << 30);
    // A memory too small for one sample says so.
    let (code, out, _) = run(&[&R50[..], &["--training", "--memory", "100MB"]].concat());
    assert_eq!(code, Some(0));
    assert!(
        out.contains("Does not fit in 95.4 MiB: batch 1 needs"),
        "{out}"
    );
}

#[test]
fn the_roofline_estimate_is_labelled_and_scales() {
    let args = [
        "--training",
        "--batch-size",
        "64,128",
        "--peak-tflops",
        "312",
        "--bandwidth",
        "2TB/s",
    ];
    let (code, out, err) = run(&[&R50[..], &args].concat());
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("step (estimate)") && out.contains("epoch (estimate)"),
        "{out}"
    );
    assert!(out.contains("Estimate (roofline, a lower bound"), "{out}");
    assert!(out.contains("1,281,167 images"), "{out}");
    let (_, json, _) = run(&[&R50[..], &args, &["-f", "json"]].concat());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let e = &v[0]["training_sweep"][1]["estimate"];
    assert_eq!(e["dataset_size"], 1_281_167);
    assert_eq!(e["steps_per_epoch"], 1_281_167u64.div_ceil(128));
    let step = e["step_seconds"].as_f64().unwrap();
    assert!(
        step > 0.0
            && (e["epoch_seconds"].as_f64().unwrap() - step * 10010.0).abs()
                < 1e-6 * step * 10010.0
    );
    // The compute part alone bounds it below: 3 passes of the MACs at the peak.
    let macs = v[0]["training_sweep"][1]["forward_macs"].as_f64().unwrap();
    assert!(step > 3.0 * 2.0 * macs / 312e12 * 0.99, "{step}");
    // CIFAR inputs default to CIFAR's 50,000 images; --dataset-size says otherwise.
    let estimate = [
        "report",
        "architectures/cifar.arch",
        "-n",
        "cifar_resnet20",
        "--training",
        "--peak-tflops",
        "100",
        "--bandwidth",
        "900",
    ];
    let (_, out, _) = run(&estimate);
    assert!(out.contains("50,000 images"), "{out}");
    let (_, out, _) = run(&[&estimate[..], &["--dataset-size", "1000"]].concat());
    assert!(out.contains("1,000 images"), "{out}");
}

#[test]
fn bad_training_flags_are_usage_errors() {
    for (args, says) in [
        (vec!["--training", "--memory", "80"], "needs a unit"),
        (
            vec!["--training", "--memory", "80XB"],
            "is not a memory size",
        ),
        (vec!["--training", "--memory=-3GiB"], "is not a memory size"),
        (vec!["--memory", "80GiB"], "--training"),
        (
            vec!["--training", "--peak-tflops", "0", "--bandwidth", "1TB/s"],
            "not a peak throughput",
        ),
        (vec!["--training", "--peak-tflops", "100"], "--bandwidth"),
        (vec!["--training", "--bandwidth", "1TB/s"], "--peak-tflops"),
        (
            vec!["--training", "--peak-tflops", "100", "--bandwidth", "fast"],
            "not a bandwidth",
        ),
        (
            vec!["--training", "--peak-tflops", "100", "--bandwidth", "3TB"],
            "not a bandwidth",
        ),
        (
            vec!["--training", "--dataset-size", "1000"],
            "--peak-tflops",
        ),
        (
            vec![
                "--training",
                "--peak-tflops",
                "1",
                "--bandwidth",
                "1",
                "--dataset-size",
                "0",
            ],
            "0",
        ),
        (vec!["--training", "--optimizer", "rmsprop"], "rmsprop"),
        (vec!["--training", "--precision", "fp8"], "fp8"),
        (
            vec!["--training", "--batch-size", "1,0"],
            "not a batch size",
        ),
        (
            vec!["--training", "--batch-size", "8589934592"],
            "not a batch size",
        ),
        (vec!["--batch-size", "1,32"], "need --training"),
        (vec!["--optimizer", "adam"], "--training"),
    ] {
        let (code, out, err) = run(&[&R50[..], &args].concat());
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn training_reports_every_zoo_file_through_the_cli() {
    // Every network of every file, with the fit and the estimate: exit 0, one report each.
    for entry in std::fs::read_dir(root().join("architectures")).unwrap() {
        let path = entry.unwrap().path();
        let file = path.to_str().unwrap();
        let (code, out, err) = run(&[
            "report",
            file,
            "--training",
            "--batch-size",
            "1,64",
            "--memory",
            "24GiB",
            "--peak-tflops",
            "100",
            "--bandwidth",
            "1TB/s",
            "-f",
            "json",
        ]);
        if err.contains("defines no networks") {
            continue;
        }
        assert_eq!(code, Some(0), "{file}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        for n in v.as_array().unwrap() {
            let t = &n["training"];
            assert!(t["peak_bytes"].as_u64().unwrap() > 0, "{file}");
            assert!(t["fit"].is_object(), "{file}");
            assert!(
                t["estimate"]["step_seconds"].as_f64().unwrap() > 0.0,
                "{file}"
            );
            assert_eq!(n["training_sweep"].as_array().unwrap().len(), 2);
        }
    }
}

/// docs/language.md's table of training rules has a row for every layer kind of the grammar.
#[test]
fn the_docs_give_every_layer_kind_its_training_rule() {
    let docs = std::fs::read_to_string(root().join("docs/language.md")).unwrap();
    let section = docs
        .split("## Training cost")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Training cost section");
    let firsts: Vec<&str> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| op "))
        .map(|l| l.split('|').nth(1).unwrap())
        .collect();
    for kind in archc_grammar::keywords::LAYER_KINDS {
        assert!(
            firsts.iter().any(|c| c
                .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .any(|w| w == *kind)),
            "`{kind}` has no row in docs/language.md's Training cost table"
        );
    }
}
