//! Merges against PyTorch: the network `branches` (runtime/tests/fixtures/branches.arch: a
//! concatenation of four branches with the identity, a squeeze-and-excitation gate as a
//! vector, a channel split and shuffle, an elementwise max, a three-way add with the identity,
//! a C×1×1 gate, and an auxiliary head) compiled, lowered and built by archc, its weights
//! loaded by their names, run forward and backward on the test device (burn-flex; LibTorch
//! CPU with `ARCHC_TEST_DEVICE=libtorch-cpu`), against `scripts/merges.py`'s
//! `torch.nn.functional` version of the same network: both outputs and the input gradient of
//! `sum(y·u) + 0.5·sum(aux·v)` agree within 1e-5.
//!
//! The references come from `scripts/merges.py` (CI runs it first); `#[ignore]`d in a plain
//! `cargo test`, run with `ARCHC_PARITY_DIR=... cargo test -p archc-runtime --test merges --
//! --ignored`. Without the references the test fails.

mod common;

use std::path::PathBuf;

use archc_runtime::Network;
use burn::tensor::{Tensor, TensorData};

const TOLERANCE: f32 = 1e-5;

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    common::values(t)
}

#[track_caller]
fn agree(what: &str, got: &[f32], want: &[f32]) -> f32 {
    common::agree(what, got, want, TOLERANCE)
}

#[test]
#[ignore = "needs scripts/merges.py's references (ARCHC_PARITY_DIR); CI runs it"]
fn merges_match_pytorch_forward_and_backward() {
    let dir = PathBuf::from(std::env::var("ARCHC_PARITY_DIR").expect(
        "ARCHC_PARITY_DIR must name the folder scripts/merges.py wrote (python3 scripts/merges.py DIR)",
    ));
    let refs = common::f32_values(&dir.join("merges.safetensors"));
    let r = |k: &str| refs.get(k).unwrap_or_else(|| panic!("no `{k}`")).clone();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/branches.arch");
    let g = common::lowered_file(&path, None).remove(0);
    assert_eq!(g.outputs.len(), 2, "a main and an auxiliary output");
    let device = common::device().autodiff();
    let mut net = Network::new(&g, &device, 0).expect("builds");
    net.load_weights(dir.join("merges_weights.safetensors"))
        .expect("every parameter loads by its archc name");
    let x = Tensor::<4>::from_data(TensorData::new(r("x"), [2, 3, 8, 8]), &device).require_grad();
    let outs = net.try_forward_outputs(x.clone()).expect("forward");
    assert_eq!(net.output_weights(), vec![1.0, 0.5]);
    let [y, aux] = <[Tensor<2>; 2]>::try_from(outs).expect("two outputs");
    let u = Tensor::<2>::from_data(TensorData::new(r("u"), [2, 5]), &device);
    let v = Tensor::<2>::from_data(TensorData::new(r("v"), [2, 5]), &device);
    let grads = ((y.clone() * u).sum() + (aux.clone() * v).sum().mul_scalar(0.5)).backward();
    let a = agree("main output", &values(y.inner()), &r("y"));
    let b = agree("auxiliary output", &values(aux.inner()), &r("aux"));
    let c = agree(
        "input gradient",
        &values(x.grad(&grads).expect("input gradient")),
        &r("dx"),
    );
    // Evaluation runs the main output alone and gives the same logits.
    let main = net.forward(x);
    agree("forward (main output only)", &values(main.inner()), &r("y"));
    eprintln!("largest differences: main {a:e}, auxiliary {b:e}, input gradient {c:e}");
}

/// A network with several outputs trains on every head: the auxiliary head's parameters get
/// a gradient from the weighted loss (and none when its weight is 0), and the loss falls.
#[test]
fn auxiliary_heads_are_trained_with_their_weight() {
    let src = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/branches.arch"),
    )
    .expect("fixture");
    let g = common::lowered_str(&src);
    let device = common::device().autodiff();
    let net = Network::new(&g, &device, 3).expect("builds");
    let x = Tensor::<4>::random(
        [4, 3, 8, 8],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let outs = net.try_forward_outputs(x.clone()).expect("forward");
    assert_eq!(outs.len(), 2);
    // The main output alone (forward) does not run the auxiliary head; its logits are the
    // first output's.
    let main = net.forward(x);
    let d = (main.inner() - outs[0].clone().inner())
        .abs()
        .max()
        .into_scalar::<f32>();
    assert!(d <= 1e-6, "forward differs from the first output by {d}");
    let loss = outs[0].clone().sum() + outs[1].clone().sum().mul_scalar(0.5);
    let grads = loss.backward();
    let Some(archc_runtime::Layer::Linear(aux)) = net.layer("aux.fc1") else {
        panic!("aux.fc1 is a linear layer")
    };
    let gw = aux
        .weight
        .val()
        .grad(&grads)
        .expect("the auxiliary head is trained");
    assert!(gw.abs().sum().into_scalar::<f32>() > 0.0);
}
