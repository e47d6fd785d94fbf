//! Layer norm over channels and group norm: their module (a scale and a shift per channel,
//! PyTorch's `weight` and `bias`, initialised to 1 and 0) and forward, with the statistics of
//! each sample (biased variance, as PyTorch). A vector `[N, F]` is normalised as a map
//! `[N, F, 1, 1]`. Checked against `F.layer_norm` and `F.group_norm` by `runtime/tests/ops.rs`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use crate::init::{param, Fill};

/// The learned scale and shift of a normalisation over channels.
#[derive(Module, Debug)]
pub struct ChannelNorm {
    pub weight: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    pub epsilon: f64,
    /// Group norm's number of groups; 0 for layer norm (each position over all channels).
    pub groups: usize,
}

impl ChannelNorm {
    pub fn new(
        channels: usize,
        groups: usize,
        epsilon: f64,
        seed: u64,
        node: usize,
        device: &Device,
    ) -> Self {
        ChannelNorm {
            weight: param([channels], Fill::Constant(1.0), seed, node, 0, device),
            bias: param([channels], Fill::Constant(0.0), seed, node, 1, device),
            epsilon,
            groups,
        }
    }

    /// Normalise `x` `[N, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [n, c, h, w] = x.dims();
        let normalised = if self.groups == 0 {
            normalise(x, 1, self.epsilon)
        } else {
            let g = self.groups;
            normalise(x.reshape([n, g, c / g * h * w]), 2, self.epsilon).reshape([n, c, h, w])
        };
        let scale = self.weight.val().reshape([1, c, 1, 1]);
        let shift = self.bias.val().reshape([1, c, 1, 1]);
        normalised * scale + shift
    }
}

/// `(x − mean) / sqrt(var + eps)` over dimension `dim` (biased variance).
fn normalise<const D: usize>(x: Tensor<D>, dim: usize, eps: f64) -> Tensor<D> {
    let mean = x.clone().mean_dim(dim);
    let centred = x - mean;
    let var = centred.clone().powi_scalar(2).mean_dim(dim);
    centred / (var + eps).sqrt()
}
