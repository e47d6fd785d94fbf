//! The op kinds that only rearrange or select: `maxout` (the maximum over K adjacent
//! channels), `channel_shuffle` (ShuffleNet) and `drop_path` (stochastic depth). A vector
//! `[N, F]` goes through them as a map `[N, F, 1, 1]`. Checked against PyTorch by
//! `runtime/tests/ops.rs`.

use burn::nn::Dropout;
use burn::tensor::{Distribution, Tensor};

/// Output channel `j` is the largest of input channels `j·K … j·K + K − 1`.
pub fn maxout(x: Tensor<4>, pieces: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c / pieces, pieces, h * w])
        .max_dim(2)
        .reshape([n, c / pieces, h, w])
}

/// torchvision's `channel_shuffle`: `x.view(N, G, C/G, H, W).transpose(1, 2)`, flattened back.
pub fn channel_shuffle(x: Tensor<4>, groups: usize) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, groups, c / groups, h * w])
        .swap_dims(1, 2)
        .reshape([n, c, h, w])
}

/// Stochastic depth, torchvision's `stochastic_depth(x, p, "row", training)`: while training
/// (the module's flag and an autodiff device, as Burn's dropout decides), each sample is kept
/// with probability 1 − p and scaled by 1/(1 − p), or zeroed whole; otherwise the identity.
pub fn drop_path(m: &Dropout, x: Tensor<4>) -> Tensor<4> {
    if !m.training.is_enabled() || !x.device().is_autodiff() || m.prob == 0.0 {
        return x;
    }
    let keep = 1.0 - m.prob;
    let [n, _, _, _] = x.dims();
    let mask = Tensor::<4>::random([n, 1, 1, 1], Distribution::Bernoulli(keep), &x.device());
    x * mask / keep
}
