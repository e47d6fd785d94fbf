//! Every family that branches and merges trains: its smallest network of the zoo, at a small
//! input, takes a few SGD steps on one batch on the test device, and the loss falls (issue 15:
//! "every new family trains a few steps on burn-flex with a falling loss"). Inception-v3 is
//! left out: its auxiliary head needs 299x299 inputs, too slow for a debug-build test; its
//! modules' merges are those `merges.rs` checks against PyTorch, forward and backward.

mod common;

use archc_runtime::Network;
use burn::tensor::{Distribution, Int, Tensor, TensorData};

fn trains(file: &str, network: &str, side: u64) {
    let g = common::lowered(file, network, Some(&[3, side, side]));
    let device = common::device().autodiff();
    let net = Network::new(&g, &device, 11).unwrap_or_else(|e| panic!("{e}"));
    let s = side as usize;
    let x = Tensor::<4>::random([4, 3, s, s], Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 7, 3, 9], [4]), &device);
    let (losses, _) = common::sgd_on_one_batch(net, x, y, 6, 0.01);
    assert!(
        losses.iter().all(|l| l.is_finite()),
        "{network}: {losses:?}"
    );
    let last = *losses.last().expect("steps");
    assert!(
        last < losses[0],
        "{network}: the loss does not fall: {losses:?}"
    );
    eprintln!("{network} at {side}x{side}: losses {losses:?}");
}

#[test]
fn trains_googlenet() {
    trains("googlenet.arch", "googlenet", 64);
}

#[test]
fn trains_densenet() {
    trains("densenet.arch", "densenet121", 32);
}

#[test]
fn trains_squeezenet_and_alexnet() {
    trains("squeezenet.arch", "squeezenet1_1", 64);
    trains("alexnet.arch", "alexnet", 64);
}

#[test]
fn trains_se_resnet() {
    trains("senet.arch", "se_resnet50", 32);
}

#[test]
fn trains_efficientnet_and_mnasnet() {
    trains("efficientnet.arch", "efficientnet_b0", 32);
    trains("mnasnet.arch", "mnasnet0_5", 32);
}

#[test]
fn trains_mobilenet_v3_and_shufflenet() {
    trains("mobilenet_v3.arch", "mobilenet_v3_small", 32);
    trains("shufflenet.arch", "shufflenet_v2_x0_5", 32);
}

#[test]
fn trains_regnet_and_convnext() {
    trains("regnet.arch", "regnet_y_400mf", 32);
    trains("convnext.arch", "convnext_tiny", 32);
}
