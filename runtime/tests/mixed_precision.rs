//! `--precision bf16|f16` and `--memory-format channels-last` on LibTorch CPU (feature `tch`;
//! runtime/src/precision.rs, runtime/src/fused.rs).
//!
//! - bf16 convolution: equals an f32 convolution of the bf16-rounded input and weight, up to the
//!   bf16 rounding of its output (2^-8 relative), and differs from the f32 convolution: bf16 is
//!   really used.
//! - 50 training steps of the tiny residual network (tests/fixtures/tiny.arch, batch 16,
//!   synthetic data) in bf16 follow the f32 run from the same seed: every step's loss within
//!   0.05 (the bound is justified at [`LOSS_BOUND`]), but not equal to it; the checkpoint stays
//!   f32 and its weights are not bf16 values (f32 master weights). 10 steps in f16 (with the
//!   loss scaler) likewise.
//! - channels-last: a convolution's output and gradients equal the default layout's (within
//!   1e-5 of their scale: the same f32 arithmetic in another order) and the output really has
//!   NHWC strides.
//!
//! The precision policy is process-wide (one run at a time), so these tests take a lock.
#![cfg(feature = "tch")]

mod common;

use std::path::Path;
use std::sync::Mutex;

use archc_runtime::precision::{self, MemoryFormat, Policy, Precision};
use archc_runtime::train::{self, metrics, Outcome, ProgressMode, Run};
use archc_runtime::{fused, parse_device, Device};
use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::{Distribution, FloatDType, Tensor};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn libtorch() -> Device {
    parse_device("libtorch-cpu").expect("tch feature")
}

/// Uniform data drawn on burn-flex from a seed (under the lock: one generator per process).
fn data<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let flex = Device::flex();
    flex.seed(seed);
    let drawn = Tensor::<D>::random(shape, Distribution::Uniform(-1.0, 1.0), &flex).into_data();
    Tensor::from_data(drawn, device)
}

fn conv(weight: Tensor<4>, bias: Option<Tensor<1>>, stride: usize, groups: usize) -> Conv2d {
    let [_, _, kh, kw] = weight.dims();
    Conv2d {
        weight: Param::from_tensor(weight),
        bias: bias.map(Param::from_tensor),
        stride: [stride, stride],
        kernel_size: [kh, kw],
        dilation: [1, 1],
        groups,
        padding: PaddingConfig2d::Explicit(1, 1, 1, 1),
    }
}

/// Output and input, weight and bias gradients of a convolution under `policy`, for a fixed
/// upstream gradient; the output's strides.
fn conv_run(
    policy: Policy,
    stride: usize,
    groups: usize,
) -> (Vec<Vec<f32>>, Vec<usize>, [usize; 4]) {
    let _p = precision::set_policy(policy);
    let device = libtorch().autodiff();
    let (cin, cout) = (8, 16);
    let x = data([2, cin, 9, 7], 1, &device).require_grad();
    let w = data([cout, cin / groups, 3, 3], 2, &device).require_grad();
    let b = data([cout], 3, &device).require_grad();
    let m = conv(w.clone(), Some(b.clone()), stride, groups);
    let y = fused::conv2d(&m, x.clone());
    let dims = y.dims();
    let strides = fused::strides(y.clone()).expect("a LibTorch tensor");
    let up = data(dims, 4, &device);
    let grads = (y.clone() * up).sum().backward();
    let v = |t: Tensor<4>| common::values(t);
    let out = vec![
        v(y.inner()),
        v(x.grad(&grads).expect("x grad")),
        v(w.grad(&grads).expect("weight grad")),
        common::values(b.grad(&grads).expect("bias grad")),
    ];
    (out, strides, dims)
}

/// Largest difference over the scale (the largest magnitude, at least 1).
fn relative(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = a.iter().chain(b).fold(1.0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

#[test]
fn channels_last_convolution_equals_the_default_and_is_nhwc() {
    let _l = lock();
    for (stride, groups) in [(1, 1), (2, 1), (1, 4), (2, 8)] {
        let contiguous = Policy::default();
        let nhwc = Policy {
            memory_format: MemoryFormat::ChannelsLast,
            ..Policy::default()
        };
        let (a, sa, [n, c, h, w]) = conv_run(contiguous, stride, groups);
        let (b, sb, _) = conv_run(nhwc, stride, groups);
        assert_eq!(sa, vec![c * h * w, h * w, w, 1], "the default is NCHW");
        assert_eq!(sb, vec![h * w * c, 1, w * c, c], "channels-last is NHWC");
        assert!(n > 1 && c > 1 && h > 1 && w > 1);
        for (what, (x, y)) in ["output", "x grad", "weight grad", "bias grad"]
            .iter()
            .zip(a.iter().zip(&b))
        {
            let d = relative(x, y);
            assert!(d <= 1e-5, "stride {stride} groups {groups} {what}: {d}");
        }
    }
}

#[test]
fn bf16_convolution_rounds_its_operands_to_bf16() {
    let _l = lock();
    let device = libtorch().autodiff();
    let x = data([2, 8, 9, 7], 1, &device);
    let w = data([12, 8, 3, 3], 2, &device);
    let round = |t: Tensor<4>| t.cast(FloatDType::BF16).cast(FloatDType::F32);
    let f32_of = |x: Tensor<4>, w: Tensor<4>| {
        let _p = precision::set_policy(Policy::default());
        common::values(fused::conv2d(&conv(w, None, 1, 1), x).inner())
    };
    let exact = f32_of(x.clone(), w.clone());
    let of_rounded = f32_of(round(x.clone()), round(w.clone()));
    let bf16 = {
        let _p = precision::set_policy(Policy {
            precision: Precision::Bf16,
            ..Policy::default()
        });
        let y = fused::conv2d(&conv(w, None, 1, 1), x);
        assert_eq!(
            y.dtype(),
            burn::tensor::DType::F32,
            "the output is cast back"
        );
        common::values(y.inner())
    };
    // Against the f32 convolution of the rounded operands: only the output's rounding to bf16
    // (2^-9 relative, at most 2^-8 of the scale) and the order of the f32 sums.
    let d = relative(&bf16, &of_rounded);
    assert!(d <= 2f32.powi(-8), "bf16 vs rounded operands: {d}");
    // Against the exact f32 one: the operands' rounding shows (72-term sums of products of
    // values rounded by up to 2^-9 each).
    let e = relative(&bf16, &exact);
    assert!(e > 1e-4, "bf16 was not used: {e}");
    eprintln!("bf16 conv: {d:e} from the rounded operands', {e:e} from f32");
}

/// Per-step losses of `steps` steps of the tiny network (3x16x16, batch 16, synthetic data, no
/// augmentation, lr 0.02) on LibTorch CPU under `precision`, the run in `dir`.
fn train_losses(precision: Precision, steps: u64, dir: &Path) -> Vec<f64> {
    let policy = Policy {
        precision,
        ..Policy::default()
    };
    run_losses(policy, steps, dir)
}

fn run_losses(policy: Policy, steps: u64, dir: &Path) -> Vec<f64> {
    let precision = policy.precision;
    let g = common::lowered_str(common::TINY);
    let mut c = common::run_config(&g, "synthetic:320", steps);
    c.device = "libtorch-cpu".into();
    c.precision = precision;
    c.memory_format = policy.memory_format;
    c.train.log_every = 1;
    c.train.eval_every = steps;
    c.train.val_fraction = 0.0;
    c.train.milestones = vec![];
    c.train.lr = 0.02;
    c.train.augment = train::AugmentKind::None;
    let p = train::prepare(&g, c).expect("prepares");
    let t = std::time::Instant::now();
    let s = train::train(Run {
        graph: &g,
        prepared: p,
        out: dir.to_path_buf(),
        device: libtorch(),
        devices: vec![],
        resume: false,
        progress: ProgressMode::Quiet,
        interrupt: None,
        pause_after: None,
        group: None,
    })
    .expect("trains");
    eprintln!(
        "{policy:?}: {steps} steps in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(s.outcome, Outcome::Finished);
    let rows = metrics::read(dir).expect("metrics");
    assert_eq!(rows.len(), steps as usize);
    rows.iter().map(|r| r.train_loss.expect("loss")).collect()
}

/// The bound on |loss_low - loss_f32| at every step. bf16 keeps 8 significant bits: each
/// rounding is off by at most 2^-9 = 0.2% relative. A layer rounds its input, weight and output
/// (3 roundings), so its output is off by about 3 * 2^-9 = 0.6% relative, and the tiny
/// network's 7 layers' independent errors add in quadrature to about sqrt(7) * 0.6% = 1.5% of
/// logits of order 1: at a loss near ln(10) = 2.3, differences of a few thousandths to a
/// hundredth. SGD then follows nearly the same path (measured: at most 0.0085 over the 50
/// steps, LibTorch CPU, 2026-12-02), so 0.05 leaves a margin of five. A run whose weights were updated in bf16 (no f32
/// master weights) loses the updates below a weight's bf16 resolution (lr 0.02 times gradients
/// of order 0.01 against weights of order 0.1, whose bf16 step is 4e-4) and stalls near 2.2
/// while f32 falls to about 1.5: far outside the bound; a run that never used bf16 is caught by
/// the requirement that the losses differ at all. f16 keeps 11 bits: the same bound holds with
/// room.
const LOSS_BOUND: f64 = 0.05;

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// `low`'s losses against `f32`'s: within [`LOSS_BOUND`], not equal; the worst difference.
#[track_caller]
fn follows(what: &str, f32_losses: &[f64], low: &[f64]) -> f64 {
    let worst = f32_losses
        .iter()
        .zip(low)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f64, f64::max);
    eprintln!("f32 losses {f32_losses:?}\n{what} losses {low:?}\nworst difference {worst}");
    assert!(worst <= LOSS_BOUND, "{what} strays from f32: {worst}");
    assert!(
        worst > 1e-5,
        "{what} losses equal f32's: {what} was not used"
    );
    worst
}

#[test]
fn bf16_training_follows_f32_with_f32_master_weights() {
    let _l = lock();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let f32_losses = train_losses(Precision::F32, 50, a.path());
    let bf16_losses = train_losses(Precision::Bf16, 50, b.path());
    follows("bf16", &f32_losses, &bf16_losses);
    let (first, last) = (mean(&bf16_losses[..10]), mean(&bf16_losses[40..]));
    assert!(
        last < first - 0.3,
        "bf16 training learns: {first} -> {last}"
    );
    // The checkpoint: f32, and values bf16 cannot hold (the f32 master weights, updated by
    // steps far below bf16's resolution of the weights).
    let ck = b.path().join("checkpoints/last/model.safetensors");
    let bytes = std::fs::read(&ck).expect("checkpoint");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let mut values = 0usize;
    let mut not_bf16 = 0usize;
    for (name, t) in st.tensors() {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
        for v in t.data().chunks_exact(4) {
            let v = f32::from_le_bytes([v[0], v[1], v[2], v[3]]);
            values += 1;
            not_bf16 += usize::from(v.to_bits() & 0xFFFF != 0);
        }
    }
    assert!(
        not_bf16 * 2 > values,
        "{not_bf16} of {values} weights are not bf16 values"
    );
}

/// f16 with dynamic loss scaling (10 steps: LibTorch's f16 convolutions are slow on a CPU).
#[test]
fn f16_training_follows_f32() {
    let _l = lock();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let f32_losses = train_losses(Precision::F32, 10, a.path());
    let f16_losses = train_losses(Precision::F16, 10, b.path());
    follows("f16", &f32_losses, &f16_losses);
}

/// Channels-last training: the same losses as the default layout (the same f32 arithmetic in
/// another order: within 1e-4).
#[test]
fn channels_last_training_equals_the_default() {
    let _l = lock();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let default = run_losses(Policy::default(), 5, a.path());
    let nhwc = Policy {
        memory_format: MemoryFormat::ChannelsLast,
        ..Policy::default()
    };
    let channels_last = run_losses(nhwc, 5, b.path());
    for (x, y) in default.iter().zip(&channels_last) {
        assert!((x - y).abs() <= 1e-4, "{default:?} vs {channels_last:?}");
    }
}
