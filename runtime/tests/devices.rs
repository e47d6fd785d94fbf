//! Data-parallel training (`Run::devices`, `--devices`) on burn-flex: two workers on the one
//! CPU device, through burn-train's `MultiDevicesTrainStep`. Small networks and few steps.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use archc_compiler::lower::LoweredGraph;
use archc_runtime::train::{
    self, metrics, Outcome, Prepared, ProgressMode, Row, Run, RunConfig, TrainError,
};
use archc_runtime::Device;

/// Residual, no batch norm (`norm none`, biased convs, and option A's parameter-free
/// shortcut: option B's projection keeps its batch norm under `norm none`): a data-parallel
/// step computes the same function of the batch as a one-device step.
const NO_BN: &str = include_str!("fixtures/nobn.arch");

/// The same with batch norm after every conv (and option B shortcuts).
const BN: &str = common::TINY;

fn graph(src: &str) -> LoweredGraph {
    common::lowered_str(src)
}

/// [`common::run_config`] on 200 synthetic images with a row every step, data-parallel on
/// `devices` (none: one device).
fn config(g: &LoweredGraph, iterations: u64, devices: &[&str]) -> RunConfig {
    let mut c = common::run_config(g, "synthetic:200", iterations);
    c.train.log_every = 1;
    c.devices = devices.iter().map(|d| d.to_string()).collect();
    c
}

fn run(
    g: &LoweredGraph,
    prepared: Prepared,
    out: &Path,
    devices: usize,
    resume: bool,
    pause: Option<u64>,
) -> Result<train::Summary, TrainError> {
    run_on(Device::flex(), g, prepared, out, devices, resume, pause)
}

/// A run on `device`, data-parallel on `devices` copies of it when `devices` > 1.
fn run_on(
    device: Device,
    g: &LoweredGraph,
    prepared: Prepared,
    out: &Path,
    devices: usize,
    resume: bool,
    pause: Option<u64>,
) -> Result<train::Summary, TrainError> {
    train::train(Run {
        graph: g,
        devices: vec![device.clone(); if devices > 1 { devices } else { 0 }],
        device,
        prepared,
        out: out.to_path_buf(),
        resume,
        progress: ProgressMode::Quiet,
        interrupt: None,
        pause_after: pause,
        group: None,
    })
}

/// Every tensor of a safetensors file, as f32 values.
fn tensors(path: &Path) -> BTreeMap<String, Vec<f32>> {
    common::f32_values(path)
}

/// The largest |a - b| / (1 + |a|) over every value of every tensor.
fn max_rel_diff(a: &BTreeMap<String, Vec<f32>>, b: &BTreeMap<String, Vec<f32>>) -> f64 {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "same tensors"
    );
    let mut worst = 0.0f64;
    for (k, va) in a {
        let vb = &b[k];
        assert_eq!(va.len(), vb.len(), "{k}");
        for (&x, &y) in va.iter().zip(vb) {
            worst = worst.max((x as f64 - y as f64).abs() / (1.0 + (x as f64).abs()));
        }
    }
    worst
}

fn untimed(rows: &[Row]) -> Vec<Row> {
    rows.iter()
        .map(|r| Row {
            images_per_s: None,
            elapsed_s: 0.0,
            ..r.clone()
        })
        .collect()
}

/// Tolerance of the comparison with one device. Both runs compute the same sums in f32, but
/// in another order: a weight's gradient is a sum over the 16 images, which two workers
/// compute as two sums of 8 added afterwards, and each shard's loss is scaled by 1/2 before
/// its backward pass instead of the batch mean's 1/16 being taken over 16. Each such
/// reordering moves a value by about one f32 rounding (6e-8 relative); 12 SGD steps with
/// momentum carry and compound those (measured: losses 1e-7 and weights 2e-8 apart, relative,
/// so the runs are not bitwise copies). 1e-5 leaves a factor of 100 for other CPUs' kernels,
/// and is far below what a wrong gradient scale does: summing the shards' unweighted mean
/// gradients, as Burn's Learner does, doubles every step, and the test checks that a
/// one-device run with twice the learning rate is more than 100 × 1e-5 away.
const TOL: f64 = 1e-5;

#[test]
fn two_cpu_workers_train_a_network_without_batch_norm_as_one_device_does() {
    same_as_one_device(Device::flex(), "cpu");
}

/// The same on LibTorch's CPU (`--devices libtorch-cpu,libtorch-cpu`).
#[cfg(feature = "tch")]
#[test]
fn two_libtorch_cpu_workers_train_a_network_without_batch_norm_as_one_device_does() {
    let d = archc_runtime::parse_device("libtorch-cpu").expect("libtorch-cpu");
    same_as_one_device(d, "libtorch-cpu");
}

fn same_as_one_device(device: Device, name: &str) {
    let g = graph(NO_BN);
    let one = tempfile::tempdir().expect("tempdir");
    let two = tempfile::tempdir().expect("tempdir");
    let p = train::prepare(&g, config(&g, 12, &[])).expect("prepares");
    run_on(device.clone(), &g, p, one.path(), 1, false, None).expect("trains on one device");
    let p = train::prepare(&g, config(&g, 12, &[name, name])).expect("prepares");
    let s = run_on(device.clone(), &g, p, two.path(), 2, false, None).expect("trains on two");
    assert_eq!((s.outcome, s.iteration), (Outcome::Finished, 12));
    let a = metrics::read(one.path()).expect("metrics");
    let b = metrics::read(two.path()).expect("metrics");
    assert_eq!(a.len(), 12);
    assert_eq!(a.len(), b.len());
    let mut worst_loss = 0.0f64;
    for (ra, rb) in a.iter().zip(&b) {
        assert_eq!(ra.iteration, rb.iteration);
        let (la, lb) = (ra.train_loss.expect("loss"), rb.train_loss.expect("loss"));
        worst_loss = worst_loss.max((la - lb).abs() / la.abs());
        // Top-1 mistakes: equal unless a logit ties the label's within the rounding.
        assert_eq!(ra.train_error, rb.train_error, "iteration {}", ra.iteration);
        assert_eq!(ra.test_error, rb.test_error, "iteration {}", ra.iteration);
        assert_eq!(ra.val_error, rb.val_error, "iteration {}", ra.iteration);
    }
    assert!(
        worst_loss < TOL,
        "losses differ by {worst_loss:e} (relative)"
    );
    // The loss moved: the comparison is of a run that trained.
    let (first, last) = (a[0].train_loss.expect("l"), a[11].train_loss.expect("l"));
    assert!((first - last).abs() > 1e-2, "{first} -> {last}");
    let w = "checkpoints/last/model.safetensors";
    let wa = tensors(&one.path().join(w));
    let wb = tensors(&two.path().join(w));
    let d = max_rel_diff(&wa, &wb);
    assert!(d < TOL, "final weights differ by {d:e}");
    eprintln!("{name}: two workers vs one device: losses {worst_loss:e}, weights {d:e} (relative)");
    let o = "checkpoints/last/optimizer.safetensors";
    let ma = tensors(&one.path().join(o));
    let mb = tensors(&two.path().join(o));
    assert!(max_rel_diff(&ma, &mb) < TOL, "momentum buffers");
    // The tolerance tells a wrong gradient scale apart: steps twice as large (lr 0.1, what
    // unweighted shard gradients give, weight decay aside) end far from it.
    let double = tempfile::tempdir().expect("tempdir");
    let mut c = config(&g, 12, &[]);
    c.train.lr *= 2.0;
    let p = train::prepare(&g, c).expect("prepares");
    run_on(device, &g, p, double.path(), 1, false, None).expect("trains");
    let wd = tensors(&double.path().join(w));
    let far = max_rel_diff(&wa, &wd);
    assert!(far > 100.0 * TOL, "twice the step is only {far:e} away");
    let c: RunConfig = train::read_config(two.path()).expect("config");
    assert_eq!(c.devices, vec![name.to_string(), name.to_string()]);
    let c1 = std::fs::read_to_string(one.path().join("config.json")).expect("config");
    assert!(!c1.contains("\"devices\""), "one device: no list\n{c1}");
}

#[test]
fn two_workers_with_batch_norm_lower_the_loss_and_update_the_running_statistics() {
    let g = graph(BN);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(&g, 40, &["cpu", "cpu"]);
    c.train.log_every = 10;
    c.train.eval_every = 40;
    c.train.lr = 0.1;
    c.data = "synthetic:400".into();
    let p = train::prepare(&g, c).expect("prepares");
    let s = run(&g, p, dir.path(), 2, false, None).expect("trains");
    assert_eq!(s.outcome, Outcome::Finished);
    common::assert_learns(&metrics::read(dir.path()).expect("metrics"));
    // The running statistics moved away from their initial 0 and 1 (they are used by the
    // evaluation above and saved in the checkpoint).
    let w = tensors(&dir.path().join("checkpoints/last/model.safetensors"));
    let var = &w["stem.bn1.running_var"];
    let mean = &w["stem.bn1.running_mean"];
    assert!(var.iter().any(|&v| (v - 1.0).abs() > 1e-3), "{var:?}");
    assert!(mean.iter().any(|&v| v.abs() > 1e-3), "{mean:?}");
}

#[test]
fn a_resumed_data_parallel_run_equals_an_uninterrupted_one() {
    // With batch norm: its running statistics, averaged over the workers, are saved and read
    // back too (the save at the interruption must take in the workers' pending updates; with
    // `value_sync()` on the main thread it saved the value of one step before, and this failed). Two workers: every sum has two terms, so the result is the same whatever the
    // order the workers finish in.
    let g = graph(BN);
    let whole = tempfile::tempdir().expect("tempdir");
    let parts = tempfile::tempdir().expect("tempdir");
    let mut c = config(&g, 12, &["cpu", "cpu"]);
    c.train.log_every = 2;
    let p = train::prepare(&g, c).expect("prepares");
    run(&g, p.clone(), whole.path(), 2, false, None).expect("trains");
    let s = run(&g, p.clone(), parts.path(), 2, false, Some(5)).expect("trains");
    assert_eq!((s.outcome, s.iteration), (Outcome::Interrupted, 5));
    let s = run(&g, p, parts.path(), 2, true, None).expect("resumes");
    assert_eq!((s.outcome, s.iteration), (Outcome::Finished, 12));
    let a = metrics::read(whole.path()).expect("metrics");
    let b = metrics::read(parts.path()).expect("metrics");
    assert_eq!(a.len(), 6);
    assert_eq!(untimed(&a), untimed(&b));
    let w = "checkpoints/last/model.safetensors";
    let wa = std::fs::read(whole.path().join(w)).expect("a");
    let wb = std::fs::read(parts.path().join(w)).expect("b");
    assert!(wa == wb, "final weights are identical");
}

#[test]
fn a_batch_that_does_not_split_evenly_is_refused() {
    let g = graph(NO_BN);
    let e = train::prepare(&g, config(&g, 4, &["cpu", "cpu", "cpu"]))
        .expect_err("16 images over 3 devices");
    assert!(matches!(e, TrainError::Config(_)), "{e}");
    assert!(
        e.to_string().contains(
            "the batch size 16 is not a multiple of the 3 devices of --devices cpu,cpu,cpu"
        ),
        "{e}"
    );
    // The same check in the loop, for a `Run` put together by hand.
    let dir = tempfile::tempdir().expect("tempdir");
    let p = train::prepare(&g, config(&g, 4, &[])).expect("prepares");
    let e = run(&g, p, dir.path(), 3, false, None).expect_err("16 over 3");
    assert!(
        e.to_string().contains("not a multiple of the 3 devices"),
        "{e}"
    );
}
