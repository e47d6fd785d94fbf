//! Layer norm over channels and group norm: their module (a scale and a shift per channel,
//! PyTorch's `weight` and `bias`, initialised to 1 and 0) and forward, with the statistics of
//! each sample (biased variance, as PyTorch). A vector `[N, F]` is normalised as a map
//! `[N, F, 1, 1]`. Checked against `F.layer_norm` and `F.group_norm` by `runtime/tests/ops.rs`.

use burn::tensor::{Device, Tensor};

use super::{divides, float, int, Attrs, RuntimeUnit, UnitLayer};
use crate::init::{param, Fill};

pub static LAYERNORM: RuntimeUnit = RuntimeUnit {
    unit: "layernorm",
    check: |a, input| check(a, input, "num_features", None),
    build: |a, seed, node, device| Some(module(int(a, "num_features"), seed, node, device)),
    forward: |a, m, x| {
        let m = m.expect("a layer norm has its module");
        affine(m, normalise(x, 0, float(a, "epsilon")))
    },
};

pub static GROUPNORM: RuntimeUnit = RuntimeUnit {
    unit: "groupnorm",
    check: |a, input| check(a, input, "num_channels", Some(int(a, "num_groups"))),
    build: |a, seed, node, device| Some(module(int(a, "num_channels"), seed, node, device)),
    forward: |a, m, x| {
        let m = m.expect("a group norm has its module");
        affine(m, normalise(x, int(a, "num_groups"), float(a, "epsilon")))
    },
};

fn check(
    a: &Attrs,
    input: &[usize],
    channels: &str,
    groups: Option<usize>,
) -> Result<Vec<usize>, String> {
    let c = int(a, channels);
    if input.first() != Some(&c) {
        return Err(format!("input {input:?} has not {c} channels"));
    }
    if let Some(g) = groups {
        divides("groups", g, c)?;
    }
    let eps = float(a, "epsilon");
    if !(eps.is_finite() && eps > 0.0) {
        return Err(format!("epsilon {eps} is not positive"));
    }
    Ok(input.to_vec())
}

fn module(channels: usize, seed: u64, node: usize, device: &Device) -> UnitLayer {
    UnitLayer::new(vec![
        param([channels], Fill::Constant(1.0), seed, node, 0, device),
        param([channels], Fill::Constant(0.0), seed, node, 1, device),
    ])
}

/// Normalise `x` `[N, C, H, W]`: over the channels at each position (`groups` 0, layer norm)
/// or over each of `groups` groups of channels and all positions (group norm).
fn normalise(x: Tensor<4>, groups: usize, eps: f64) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    if groups == 0 {
        standardise(x, 1, eps)
    } else {
        standardise(x.reshape([n, groups, c / groups * h * w]), 2, eps).reshape([n, c, h, w])
    }
}

/// The learned scale and shift per channel.
fn affine(m: &UnitLayer, x: Tensor<4>) -> Tensor<4> {
    let [_, c, _, _] = x.dims();
    let scale = m.params[0].val().reshape([1, c, 1, 1]);
    let shift = m.params[1].val().reshape([1, c, 1, 1]);
    x * scale + shift
}

/// `(x − mean) / sqrt(var + eps)` over dimension `dim` (biased variance).
fn standardise<const D: usize>(x: Tensor<D>, dim: usize, eps: f64) -> Tensor<D> {
    let mean = x.clone().mean_dim(dim);
    let centred = x - mean;
    let var = centred.clone().powi_scalar(2).mean_dim(dim);
    centred / (var + eps).sqrt()
}
