//! `archc codegen` output compiles and is a working Burn module: the generated file for
//! cifar_resnet20 (committed in tests/generated/, built by this test) has the compiler's
//! parameter count and the inferred output shape, and is what `codegen::generate` writes today.
//! Regenerate with `archc codegen architectures/cifar.arch -n cifar_resnet20
//! -o runtime/tests/generated/cifar_resnet20.rs` after a change to the code generator.

mod common;

#[rustfmt::skip]
#[path = "generated/cifar_resnet20.rs"]
mod generated;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData};

/// Trainable parameters: every parameter except batch norm's running statistics.
struct Trainable(usize);

impl ModuleVisitor for Trainable {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0 += param.shape().num_elements();
    }
}

#[test]
fn generated_module_matches_the_compiler() {
    let g = common::lowered("cifar.arch", "cifar_resnet20", None);
    let origin = "`architectures/cifar.arch`";
    let now = archc_runtime::codegen::generate(&g, origin);
    let committed = include_str!("generated/cifar_resnet20.rs");
    assert_eq!(
        committed, now,
        "tests/generated/cifar_resnet20.rs is stale: regenerate it with archc codegen"
    );

    let device = common::device();
    let net = generated::CifarResnet20::new(&device);
    let mut all = Trainable(0);
    net.visit(&mut all);
    // Burn counts BN's running mean and variance among its parameters; the compiler calls them
    // buffers: 2 per channel of each of the 19 batch norms (688 channels in all).
    let bn_channels: usize = g
        .nodes
        .iter()
        .filter_map(|n| match n.op {
            archc_compiler::lower::LoweredOp::BatchNorm { num_features, .. } => Some(num_features),
            _ => None,
        })
        .sum();
    assert_eq!(all.0, g.params as usize + 2 * bn_channels);
    assert_eq!(g.params, 269_722);

    let x = Tensor::<4>::from_data(
        TensorData::new(vec![0.5f32; 2 * 3 * 32 * 32], [2, 3, 32, 32]),
        &device,
    );
    let y = net.forward(x);
    assert_eq!(y.dims(), [2, 10]);
}
