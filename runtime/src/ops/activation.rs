//! The activations' runtime unit: the forward of every [`Activation`] on Burn tensors (Burn's
//! autodiff gives the backward), PReLU's module, and the Burn API text `archc codegen` writes.
//! Definitions are PyTorch's (`torch.nn.functional`), checked against it by
//! `runtime/tests/activations.rs`.

use archc_compiler::layers::activation::{Activation, PRELU_INIT};
use burn::nn::PRelu;
use burn::tensor::activation::{
    gelu, gelu_approximate, hard_sigmoid, hard_swish, leaky_relu, prelu, relu, sigmoid, silu, tanh,
};
use burn::tensor::{Device, Tensor};

use crate::init::{param, Fill};

/// `act(x)` for an activation without parameters (PReLU goes through [`prelu_forward`]).
pub fn forward<const D: usize>(act: Activation, x: Tensor<D>) -> Tensor<D> {
    match act {
        Activation::Relu => relu_layer(x),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::Sigmoid => sigmoid(x),
        // PyTorch: relu6(x + 3) / 6 = clamp(x / 6 + 1/2, 0, 1).
        Activation::HardSigmoid => hard_sigmoid(x, 1.0 / 6.0, 0.5),
        Activation::Silu => silu(x),
        Activation::HardSwish => hard_swish(x),
        Activation::Gelu { tanh: false } => gelu(x),
        Activation::Gelu { tanh: true } => gelu_approximate(x),
        Activation::Tanh => tanh(x),
        Activation::LeakyRelu { slope } => leaky_relu(x, slope),
        Activation::PRelu => unreachable!("PReLU has parameters: prelu_forward"),
    }
}

/// PReLU over the channels (dimension 1) with the module's slopes.
pub fn prelu_forward<const D: usize>(m: &PRelu, x: Tensor<D>) -> Tensor<D> {
    prelu(x, m.alpha.val())
}

/// A PReLU module of `channels` slopes, each starting at 0.25 as PyTorch's.
pub fn prelu_module(channels: usize, seed: u64, node: usize, device: &Device) -> PRelu {
    PRelu {
        alpha: param(
            [channels],
            Fill::Constant(PRELU_INIT as f32),
            seed,
            node,
            0,
            device,
        ),
        alpha_value: PRELU_INIT,
    }
}

/// ReLU: Burn's, except when training on LibTorch, where LibTorch's own kernels run forward and
/// backward (`crate::fused`, feature `tch`).
pub fn relu_layer<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    #[cfg(feature = "tch")]
    if crate::fused::is_libtorch_training(&x.device()) {
        return crate::fused::relu(x);
    }
    relu(x)
}

/// The Burn expression `archc codegen` writes for `act` applied to the expression `x`.
pub fn rust_text(act: Activation, x: &str) -> String {
    match act {
        Activation::Relu => format!("relu({x})"),
        Activation::Relu6 => format!("{x}.clamp(0.0, 6.0)"),
        Activation::Sigmoid => format!("sigmoid({x})"),
        Activation::HardSigmoid => format!("hard_sigmoid({x}, 1.0 / 6.0, 0.5)"),
        Activation::Silu => format!("silu({x})"),
        Activation::HardSwish => format!("hard_swish({x})"),
        Activation::Gelu { tanh: false } => format!("gelu({x})"),
        Activation::Gelu { tanh: true } => format!("gelu_approximate({x})"),
        Activation::Tanh => format!("tanh({x})"),
        Activation::LeakyRelu { slope } => format!("leaky_relu({x}, {slope:?})"),
        Activation::PRelu => unreachable!("PReLU is a module: its field's forward"),
    }
}

/// The functions [`rust_text`] calls, for the generated file's `use` line.
pub const RUST_IMPORTS: &str = "gelu, gelu_approximate, hard_sigmoid, hard_swish, leaky_relu, relu, sigmoid, silu, softmax, tanh";
