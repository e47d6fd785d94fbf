//! The unit kinds that only rearrange or select: `maxout` (the maximum over K adjacent
//! channels), `channel_shuffle` (ShuffleNet) and `drop_path` (stochastic depth). A vector
//! `[N, F]` goes through them as a map `[N, F, 1, 1]`. Checked against PyTorch by
//! `runtime/tests/ops.rs`.

use burn::tensor::{Distribution, Tensor};

use super::{divides, float, int, RuntimeUnit, UnitLayer};

pub static MAXOUT: RuntimeUnit = RuntimeUnit {
    unit: "maxout",
    check: |a, input| {
        let (k, c) = (int(a, "pieces"), input.first().copied().unwrap_or(0));
        divides("pieces", k, c)?;
        let mut out = input.to_vec();
        out[0] = c / k;
        Ok(out)
    },
    build: |_, _, _, _| None,
    forward: |a, _, x| maxout(x, int(a, "pieces")),
};

pub static CHANNEL_SHUFFLE: RuntimeUnit = RuntimeUnit {
    unit: "channel_shuffle",
    check: |a, input| {
        if input.len() != 3 {
            return Err(format!("needs a map [C, H, W], got {input:?}"));
        }
        divides("groups", int(a, "groups"), input[0])?;
        Ok(input.to_vec())
    },
    build: |_, _, _, _| None,
    forward: |a, _, x| channel_shuffle(x, int(a, "groups")),
};

pub static DROP_PATH: RuntimeUnit = RuntimeUnit {
    unit: "drop_path",
    check: |a, input| {
        let p = float(a, "prob");
        if !(0.0..1.0).contains(&p) {
            return Err(format!("drop path probability {p} is not in [0, 1)"));
        }
        Ok(input.to_vec())
    },
    // No parameters: the module is its training flag.
    build: |_, _, _, _| Some(UnitLayer::new(Vec::new())),
    forward: |a, m, x| drop_path(m.expect("a drop path has its flag"), float(a, "prob"), x),
};

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
pub fn drop_path(m: &UnitLayer, p: f64, x: Tensor<4>) -> Tensor<4> {
    if !m.training.is_enabled() || !x.device().is_autodiff() || p == 0.0 {
        return x;
    }
    let keep = 1.0 - p;
    let [n, _, _, _] = x.dims();
    let mask = Tensor::<4>::random([n, 1, 1, 1], Distribution::Bernoulli(keep), &x.device());
    x * mask / keep
}
