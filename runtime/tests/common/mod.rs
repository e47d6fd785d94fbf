//! Shared helpers: compile zoo networks to lowered graphs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use archc_compiler::lower::{lower, LoweredGraph};
use archc_compiler::{build_network, compile_str, load_path, LoadError, Overrides};
use archc_runtime::train::{Recipe, Row, RunConfig, TrainConfig};
use archc_runtime::Network;
use burn::tensor::{Distribution, Tensor};

pub fn architectures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../architectures")
}

/// Every `*.arch` file of the zoo, sorted.
pub fn zoo_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(architectures())
        .expect("architectures/ is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "arch"))
        .collect();
    files.sort();
    files
}

/// The root networks of one zoo file, lowered with `input` overridden (if given).
pub fn lowered_file(path: &Path, input: Option<&[u64]>) -> Vec<LoweredGraph> {
    let (sources, prog) = load_path(path);
    let prog = match prog {
        Ok(p) => p,
        Err(LoadError::Diagnostics(d)) => panic!("{}", d.render_plain(&sources)),
        Err(e) => panic!("{}: {e:?}", path.display()),
    };
    let ov = Overrides {
        input: input.map(<[u64]>::to_vec),
        classes: None,
    };
    prog.root_networks
        .iter()
        .map(|n| {
            let t = build_network(&prog, n, &ov)
                .unwrap_or_else(|d| panic!("{n}: {}", d.render_plain(&sources)));
            lower(&t)
        })
        .collect()
}

/// One zoo network, lowered with `input` overridden (if given).
pub fn lowered(file: &str, network: &str, input: Option<&[u64]>) -> LoweredGraph {
    let path = architectures().join(file);
    lowered_file(&path, input)
        .into_iter()
        .find(|g| g.network == network)
        .unwrap_or_else(|| panic!("{network} not in {file}"))
}

/// fixtures/tiny.arch: a tiny residual network with batch norm (network `tiny`).
pub const TINY: &str = include_str!("../fixtures/tiny.arch");

/// The first network of an `.arch` source, lowered.
pub fn lowered_str(src: &str) -> LoweredGraph {
    let (_, r) = compile_str("net.arch", src, &Overrides::default());
    let nets = r.unwrap_or_else(|_| panic!("the test network compiles"));
    lower(&nets[0])
}

/// A short run's configuration for the training tests: the CIFAR recipe with batch 16, lr 0.05
/// divided at 3/4 of `iterations`, a row every 2 steps, an evaluation every 4, 10% validation,
/// seed 3, one CPU device.
pub fn run_config(g: &LoweredGraph, data: &str, iterations: u64) -> RunConfig {
    let train = TrainConfig {
        iterations,
        batch_size: 16,
        lr: 0.05,
        milestones: vec![iterations * 3 / 4],
        log_every: 2,
        eval_every: 4,
        val_fraction: 0.1,
        seed: 3,
        ..Recipe::PaperCifar.config()
    };
    RunConfig {
        archc_version: "test".into(),
        file: "net.arch".into(),
        network: g.network.clone(),
        input_override: None,
        classes_override: None,
        input: vec![],
        classes: 0,
        params: 0,
        data: data.into(),
        device: "cpu".into(),
        devices: vec![],
        precision: Default::default(),
        memory_format: Default::default(),
        init: None,
        train,
    }
}

/// The four rows of a 40-step [`run_config`] run logged every 10 steps (lr 0.1, 400 images):
/// the training loss starts near ln(10), falls by more than 0.3, and the final test error is
/// better than chance.
#[track_caller]
pub fn assert_learns(rows: &[Row]) {
    assert_eq!(rows.len(), 4);
    let first = rows[0].train_loss.expect("loss");
    let last = rows[3].train_loss.expect("loss");
    assert!(first > 2.0, "starts near ln(10): {first}");
    assert!(last < first - 0.3, "loss falls: {first} -> {last}");
    let test = rows[3].test_error.expect("test error measured at the end");
    assert!(test < 0.8, "better than chance on the test split: {test}");
}

/// The device the runtime tests run on: burn-flex by default; `ARCHC_TEST_DEVICE=libtorch-cpu`
/// (with the `tch` feature) runs the same tests on LibTorch, as CI does.
pub fn device() -> archc_runtime::Device {
    match std::env::var("ARCHC_TEST_DEVICE") {
        Ok(name) => archc_runtime::parse_device(&name)
            .unwrap_or_else(|e| panic!("ARCHC_TEST_DEVICE={name}: {e}")),
        Err(_) => archc_runtime::Device::flex(),
    }
}

/// SGD with momentum 0.9, dampening 0 and no weight decay, as PyTorch's
/// `SGD(momentum=0.9)`.
pub fn momentum_sgd() -> burn::optim::SgdConfig {
    use burn::optim::momentum::MomentumConfig;
    burn::optim::SgdConfig::new().with_momentum(Some(MomentumConfig {
        momentum: 0.9,
        dampening: 0.0,
        nesterov: false,
    }))
}

/// `steps` SGD steps (momentum 0.9, dampening 0, as PyTorch's SGD) of `net` on one fixed
/// batch `x` with labels `y`; the loss before each step and the trained network.
pub fn sgd_on_one_batch(
    mut net: archc_runtime::Network,
    x: burn::tensor::Tensor<4>,
    y: burn::tensor::Tensor<1, burn::tensor::Int>,
    steps: usize,
    lr: f64,
) -> (Vec<f32>, archc_runtime::Network) {
    use burn::nn::loss::CrossEntropyLossConfig;
    use burn::optim::GradientsParams;
    let loss_fn = CrossEntropyLossConfig::new().init(&x.device());
    let mut optim = momentum_sgd().init();
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        let loss = loss_fn.forward(net.forward(x.clone()), y.clone());
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(lr, net, grads);
    }
    (losses, net)
}

/// Every float32 tensor of a safetensors file by name, with its shape (batch norm's i64
/// `num_batches_tracked` left out).
pub fn f32_tensors(path: &Path) -> std::collections::BTreeMap<String, (Vec<f32>, Vec<usize>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    st.tensors()
        .into_iter()
        .filter(|(_, t)| t.dtype() == safetensors::Dtype::F32)
        .map(|(name, t)| {
            let v = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            (name, (v, t.shape().to_vec()))
        })
        .collect()
}

/// [`f32_tensors`] without the shapes.
pub fn f32_values(path: &Path) -> std::collections::BTreeMap<String, Vec<f32>> {
    f32_tensors(path)
        .into_iter()
        .map(|(k, (v, _))| (k, v))
        .collect()
}

/// Forward one batch of `batch` random inputs through `g` and check the logits' shape and
/// that they are finite. Training mode (autodiff device: batch norm uses batch statistics):
/// in eval mode a fresh network's batch norms (running mean 0, var 1) normalise nothing, and
/// a deep residual net's activations then double at every block (cifar_resnet1202 overflows
/// f32, as it would in PyTorch). Eval mode is exercised by the weights and behaviour tests.
pub fn forward_shape(g: &archc_compiler::lower::LoweredGraph, batch: usize) {
    let device = device().autodiff();
    let net = Network::new(g, &device, 1).unwrap_or_else(|e| panic!("{e}"));
    let y = match g.input[..] {
        [c, h, w] => {
            let x = Tensor::<4>::random([batch, c, h, w], Distribution::Normal(0.0, 1.0), &device);
            net.try_forward(x)
        }
        [f] => {
            let x = Tensor::<2>::random([batch, f], Distribution::Normal(0.0, 1.0), &device);
            net.try_forward_flat(x)
        }
        _ => panic!("{}: input {:?}", g.network, g.input),
    }
    .unwrap_or_else(|e| panic!("{e}"));
    let mut expected = vec![batch];
    expected.extend(&g.output);
    assert_eq!(y.dims().to_vec(), expected, "{}", g.network);
    let v = y
        .inner()
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 logits");
    assert!(
        v.iter().all(|x| x.is_finite()),
        "{}: non-finite logits",
        g.network
    );
}

/// A tensor's values as f32.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32")
}

/// The largest absolute difference of `got` and `want`, which must be within `tolerance`.
#[track_caller]
pub fn agree(what: &str, got: &[f32], want: &[f32], tolerance: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let worst = got
        .iter()
        .zip(want)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst <= tolerance,
        "{what}: archc and PyTorch differ by {worst} (tolerance {tolerance})"
    );
    worst
}

/// The deepest zoo networks, whose forward shapes `zoo.rs` checks at 32x32, batch 1, rather
/// than with the rest (`zoo_rest.rs`): each takes over ~3 s in a debug build.
pub const DEEP_ZOO: [&str; 7] = [
    "vgg19_bn_c100",
    "preact_resnet101",
    "preact_resnet152",
    "cifar_preact_resnet1001",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet101_2",
];
