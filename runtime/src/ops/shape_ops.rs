//! The unit kinds that only rearrange or select: `maxout` (the maximum over K adjacent
//! channels), `channel_shuffle` (ShuffleNet) and `drop_path` (stochastic depth). A vector
//! `[N, F]` goes through them as a map `[N, F, 1, 1]`. Checked against PyTorch by
//! `runtime/tests/ops.rs`.

use burn::tensor::{Distribution, Tensor};
use linkme::distributed_slice;

use super::{
    divides, float, inputs, int, value, Gen, RuntimeUnit, Rust, Torch, UnitLayer, RUNTIME_UNITS,
};
use crate::onnx::attr_ints;

#[distributed_slice(RUNTIME_UNITS)]
static MAXOUT: RuntimeUnit = RuntimeUnit {
    unit: "maxout",
    check: |a, ins| {
        let [input] = inputs(ins)?;
        let (k, c) = (int(a, "pieces"), input.first().copied().unwrap_or(0));
        divides("pieces", k, c)?;
        let mut out = input.to_vec();
        out[0] = c / k;
        Ok(out)
    },
    build: |_, _, _, _| None,
    forward: |a, _, ins| value(ins).as_map(|x| maxout(x, int(a, "pieces"))),
    pytorch: |a, py| {
        // Output channel j is the largest of input channels j·K … j·K + K − 1.
        let k = int(a, "pieces");
        Ok(Torch::expr(format!(
            "{}.unflatten(1, (-1, {k})).amax(2)",
            py.x(0)
        )))
    },
    rust: |a, g| {
        Ok(map_function(
            g,
            format!("maxout({{x}}, {})", int(a, "pieces")),
            MAXOUT_RUST,
        ))
    },
    // `[N, C/K, K, H·W]` (or `[N, F/K, K]`), `ReduceMax` over the pieces, back to a map.
    onnx: |a, o| {
        let (x, k) = (o.x(0), int(a, "pieces") as i64);
        let s: Vec<i64> = o.shape(0).iter().map(|&d| d as i64).collect();
        let c = s[0] / k;
        let spatial: i64 = s[1..].iter().product();
        let pieces = o.reshape(&x, &[0, c, k, spatial]);
        let m = o.reduce("ReduceMax", &pieces, &[2], false);
        let mut out = vec![0, c];
        out.extend(&s[1..]);
        Ok(o.reshape(&m, &out))
    },
};

#[distributed_slice(RUNTIME_UNITS)]
static CHANNEL_SHUFFLE: RuntimeUnit = RuntimeUnit {
    unit: "channel_shuffle",
    check: |a, ins| {
        let [input] = inputs(ins)?;
        if input.len() != 3 {
            return Err(format!("needs a map [C, H, W], got {input:?}"));
        }
        divides("groups", int(a, "groups"), input[0])?;
        Ok(input.to_vec())
    },
    build: |_, _, _, _| None,
    forward: |a, _, ins| value(ins).as_map(|x| channel_shuffle(x, int(a, "groups"))),
    pytorch: |a, py| {
        // torchvision's channel_shuffle: view(N, G, C/G, H, W), transpose(1, 2), flatten back.
        let g = int(a, "groups");
        Ok(Torch::expr(format!(
            "{}.unflatten(1, ({g}, -1)).transpose(1, 2).flatten(1, 2)",
            py.x(0)
        )))
    },
    rust: |a, g| {
        let call = format!("channel_shuffle({{x}}, {})", int(a, "groups"));
        Ok(map_function(g, call, CHANNEL_SHUFFLE_RUST))
    },
    // torchvision's: `Reshape` to `[N, G, C/G, H·W]`, `Transpose` the groups and channels,
    // `Reshape` back.
    onnx: |a, o| {
        let (x, g) = (o.x(0), int(a, "groups") as i64);
        let s: Vec<i64> = o.shape(0).iter().map(|&d| d as i64).collect();
        let spatial: i64 = s[1..].iter().product();
        let grouped = o.reshape(&x, &[0, g, s[0] / g, spatial]);
        let t = o.op(
            "Transpose",
            &[&grouped],
            vec![attr_ints("perm", &[0, 2, 1, 3])],
        );
        let mut out = vec![0];
        out.extend(&s);
        Ok(o.reshape(&t, &out))
    },
};

#[distributed_slice(RUNTIME_UNITS)]
static DROP_PATH: RuntimeUnit = RuntimeUnit {
    unit: "drop_path",
    check: |a, ins| {
        let [input] = inputs(ins)?;
        let p = float(a, "prob");
        if !(0.0..1.0).contains(&p) {
            return Err(format!("drop path probability {p} is not in [0, 1)"));
        }
        Ok(input.to_vec())
    },
    // No parameters: the module is its training flag.
    build: |_, _, _, _| Some(UnitLayer::new(Vec::new())),
    forward: |a, m, ins| {
        let m = m.expect("a drop path has its flag");
        value(ins).as_map(|x| drop_path(m, float(a, "prob"), x))
    },
    // Burn's `Dropout` holds the probability and the training flag (no parameters); the
    // function drops whole samples.
    pytorch: |a, py| {
        let mut t = Torch::expr(format!(
            "drop_path({}, {}, self.training)",
            py.x(0),
            crate::pytorch::float(float(a, "prob"))
        ));
        t.helpers.push(DROP_PATH_PYTHON);
        Ok(t)
    },
    rust: |a, g| {
        let init = format!("DropoutConfig::new({:?}).init()", float(a, "prob"));
        let expr = format!("drop_path(&self.{}, {})", g.field, g.x(0));
        let mut r = Rust::module("Dropout", init, expr);
        r.uses.push("use burn::tensor::Distribution;");
        r.helpers.push(DROP_PATH_RUST);
        Ok(r)
    },
    // The identity in inference: no node.
    onnx: |_, o| Ok(o.x(0)),
};

/// A call of a generated function on maps (`call` with `{x}` for the map): a vector `[N, F]`
/// goes in as `[N, F, 1, 1]` and comes out as a vector, as [`super::Value::as_map`] does.
fn map_function(g: &Gen, call: String, function: &'static str) -> Rust {
    let expr = if g.inputs[0].1 == 4 {
        call.replace("{x}", g.x(0))
    } else {
        let x = format!("{}.unsqueeze_dims::<4>(&[2, 3])", g.x(0));
        format!("{}.flatten(1, 3)", call.replace("{x}", &x))
    };
    let mut r = Rust::expr(expr);
    r.helpers.push(function);
    r
}

/// [`maxout`] in the generated file.
const DROP_PATH_PYTHON: &str = r#"def drop_path(x, p, training):
    """Stochastic depth (torchvision's `stochastic_depth(x, p, "row", training)`): while
    training, each sample is kept with probability 1 - p and scaled by 1/(1 - p), or zeroed
    whole; otherwise the identity."""
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    mask = x.new_empty([x.shape[0]] + [1] * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep
"#;

const MAXOUT_RUST: &str = "/// Maxout: output channel `j` is the largest of input channels `j·K … j·K + K − 1`.\nfn maxout(x: Tensor<4>, pieces: usize) -> Tensor<4> {\n    let [n, c, h, w] = x.dims();\n    x.reshape([n, c / pieces, pieces, h * w])\n        .max_dim(2)\n        .reshape([n, c / pieces, h, w])\n}\n";

/// [`channel_shuffle`] in the generated file.
const CHANNEL_SHUFFLE_RUST: &str = "/// torchvision's `channel_shuffle`: `x.view(N, G, C/G, H, W).transpose(1, 2)`, flattened back.\nfn channel_shuffle(x: Tensor<4>, groups: usize) -> Tensor<4> {\n    let [n, c, h, w] = x.dims();\n    x.reshape([n, groups, c / groups, h * w])\n        .swap_dims(1, 2)\n        .reshape([n, c, h, w])\n}\n";

/// [`drop_path`] in the generated file, on a map or vectors; `m` holds the probability and the
/// training flag.
const DROP_PATH_RUST: &str = "/// Stochastic depth (torchvision's `stochastic_depth(x, p, \"row\", training)`): while training\n/// (`m`'s flag and an autodiff device), each sample is kept with probability 1 − p and scaled by\n/// 1/(1 − p), or zeroed whole; otherwise the identity.\nfn drop_path<const D: usize>(m: &Dropout, x: Tensor<D>) -> Tensor<D> {\n    if !m.training.is_enabled() || !x.device().is_autodiff() || m.prob == 0.0 {\n        return x;\n    }\n    let keep = 1.0 - m.prob;\n    let mut shape = [1; D];\n    shape[0] = x.dims()[0];\n    let mask = Tensor::<D>::random(shape, Distribution::Bernoulli(keep), &x.device());\n    x * mask / keep\n}\n";

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
