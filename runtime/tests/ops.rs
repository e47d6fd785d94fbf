//! Op kinds against PyTorch's functional forms: one-layer networks (`input 3x5x5`, then an
//! activation; `input 3x8x8`, then a pool in `ceil_mode`) compiled, lowered and built by archc,
//! run forward and backward on the test device (burn-flex; LibTorch CPU with
//! `ARCHC_TEST_DEVICE=libtorch-cpu`), against `torch.nn.functional` on the same input and
//! upstream gradient. Outputs and input gradients agree within 1e-5 (absolute; values are of
//! order 1 to 5); PReLU's slope gradient too, with slopes loaded by their PyTorch name.
//!
//! The references come from `scripts/ops.py`, which CI runs first; like the parity test these
//! are `#[ignore]`d in a plain `cargo test` (no PyTorch there) and run with
//! `ARCHC_PARITY_DIR=... cargo test -p archc-runtime --test ops -- --ignored`. Without the
//! references they fail: they never pass vacuously.

mod common;

use std::path::PathBuf;

use archc_runtime::{Layer, Network};
use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use safetensors::SafeTensors;

const TOLERANCE: f32 = 1e-5;

fn references() -> (PathBuf, Vec<u8>) {
    let dir = std::env::var("ARCHC_PARITY_DIR").expect(
        "ARCHC_PARITY_DIR must name the folder scripts/ops.py wrote (python3 scripts/ops.py DIR)",
    );
    let path = PathBuf::from(dir).join("ops.safetensors");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, bytes)
}

fn tensor(st: &SafeTensors, name: &str) -> Vec<f32> {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    t.data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    common::values(t)
}

#[track_caller]
fn agree(what: &str, got: &[f32], want: &[f32]) -> f32 {
    common::agree(what, got, want, TOLERANCE)
}

/// Forward and backward of the network `a LAYER` on the reference input: (y, dx, the network).
fn run(layer: &str, st: &SafeTensors, prelu: Option<&PathBuf>) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let src = format!("network n {{\n    input 3x5x5\n    a {layer}\n}}\n");
    let g = common::lowered_str(&src);
    let device = common::device().autodiff();
    let mut net = Network::new(&g, &device, 0).expect("builds");
    if let Some(w) = prelu {
        net.load_weights(w)
            .expect("slopes load by their PyTorch name");
    }
    let x = Tensor::<4>::from_data(TensorData::new(tensor(st, "x"), [2, 3, 5, 5]), &device)
        .require_grad();
    let u = Tensor::<2>::from_data(TensorData::new(tensor(st, "u"), [2, 75]), &device);
    let y = net.forward(x.clone());
    let grads = (y.clone() * u).sum().backward();
    let dx = values(x.grad(&grads).expect("input gradient"));
    let dw = match net.layer("a.prelu1") {
        Some(Layer::PRelu(p)) => values(p.alpha.val().grad(&grads).expect("slope gradient")),
        _ => Vec::new(),
    };
    (values(y.inner()), dx, dw)
}

#[test]
#[ignore = "needs scripts/ops.py's references (ARCHC_PARITY_DIR); CI runs it"]
fn activations_match_pytorch_forward_and_backward() {
    let (path, bytes) = references();
    let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases = [
        ("relu", "relu"),
        ("relu6", "relu6"),
        ("sigmoid", "sigmoid"),
        ("hardsigmoid", "hardsigmoid"),
        ("silu", "silu"),
        ("hardswish", "hardswish"),
        ("gelu", "gelu"),
        ("gelu approximate: tanh", "gelu_tanh"),
        ("tanh", "tanh"),
        ("leaky_relu", "leaky_relu"),
        ("leaky_relu 0.2", "leaky_relu_0.2"),
    ];
    for (layer, name) in cases {
        let (y, dx, _) = run(layer, &st, None);
        let a = agree(
            &format!("{layer}: output"),
            &y,
            &tensor(&st, &format!("{name}.y")),
        );
        let b = agree(
            &format!("{layer}: input gradient"),
            &dx,
            &tensor(&st, &format!("{name}.dx")),
        );
        eprintln!("{layer:<24} largest differences: output {a:e}, input gradient {b:e}");
    }
    // PReLU with the reference's slopes, loaded as PyTorch names them (`a.prelu1.weight`).
    let dir = tempfile::tempdir().expect("tempdir");
    let w = dir.path().join("prelu.safetensors");
    let slopes = tensor(&st, "prelu.weight");
    let bytes: Vec<u8> = slopes.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3], &bytes)
        .expect("view");
    safetensors::serialize_to_file([("a.prelu1.weight", view)], None, &w).expect("write");
    let (y, dx, dw) = run("prelu", &st, Some(&w));
    let a = agree("prelu: output", &y, &tensor(&st, "prelu.y"));
    let b = agree("prelu: input gradient", &dx, &tensor(&st, "prelu.dx"));
    // The slope gradient sums over 50 positions per channel: 1e-4 of its scale.
    let want = tensor(&st, "prelu.dweight");
    let worst = dw
        .iter()
        .zip(&want)
        .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
    assert_eq!(dw.len(), 3);
    assert!(worst <= 1e-4, "prelu: slope gradient differs by {worst}");
    eprintln!(
        "prelu largest differences: output {a:e}, input gradient {b:e}, slope gradient {worst:e}"
    );
}

/// Without PyTorch: each activation builds, runs forward and backward on the test device, and
/// keeps its input's shape; PReLU's slopes start at PyTorch's 0.25 and are its parameters.
#[test]
fn every_activation_builds_and_runs_backward() {
    for layer in [
        "relu",
        "relu6",
        "sigmoid",
        "hardsigmoid",
        "silu",
        "hardswish",
        "gelu",
        "gelu approximate: tanh",
        "tanh",
        "leaky_relu 0.3",
        "prelu",
    ] {
        let g = common::lowered_str(&format!(
            "network n {{\n    input 3x4x4\n    a conv 3x3, 5\n    b {layer}\n    head avgpool, fc 2\n}}\n"
        ));
        let device = common::device().autodiff();
        let net = Network::new(&g, &device, 1).expect("builds");
        assert_eq!(net.num_trainable_params(), g.params, "{layer}");
        let x = Tensor::<4>::ones([2, 3, 4, 4], &device).require_grad();
        let y = net.forward(x.clone());
        assert_eq!(y.dims(), [2, 2]);
        let grads = y.sum().backward();
        assert!(
            x.grad(&grads).is_some(),
            "{layer}: a gradient reaches the input"
        );
        if layer == "prelu" {
            let Some(Layer::PRelu(p)) = net.layer("b.prelu1") else {
                panic!("prelu layer")
            };
            assert_eq!(values(p.alpha.val().inner()), vec![0.25; 5]);
        }
    }
}

#[test]
#[ignore = "needs scripts/ops.py's references (ARCHC_PARITY_DIR); CI runs it"]
fn pools_in_ceil_mode_match_pytorch() {
    let (path, bytes) = references();
    let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases = [
        (
            "maxpool 3x3, stride: 2, ceil_mode: true",
            "maxpool_k3s2_ceil",
            4,
        ),
        (
            "maxpool 3x3, stride: 2, padding: 1, ceil_mode: true",
            "maxpool_k3s2p1_ceil",
            5,
        ),
        (
            "avgpool 3x3, stride: 2, ceil_mode: true",
            "avgpool_k3s2_ceil",
            4,
        ),
        (
            "avgpool 3x3, stride: 2, padding: 1, ceil_mode: true",
            "avgpool_k3s2p1_ceil",
            5,
        ),
    ];
    for (layer, name, side) in cases {
        let g = common::lowered_str(&format!(
            "network n {{\n    input 3x8x8\n    a {layer}\n}}\n"
        ));
        assert_eq!(
            g.output,
            vec![3, side, side],
            "{layer}: the compiler's shape is PyTorch's"
        );
        forward_backward_agree(&st, &g, layer, name, tensor(&st, "p"));
    }
}

/// The network of one layer `g` on input `x` (`[2, …g.input]`): its output and the input
/// gradient of `sum(y · v)` equal PyTorch's `{name}.y` and `{name}.dx` (`v` is `{name}.v`).
fn forward_backward_agree(
    st: &SafeTensors,
    g: &archc_compiler::lower::LoweredGraph,
    layer: &str,
    name: &str,
    x: Vec<f32>,
) {
    let device = common::device().autodiff();
    let net = Network::new(g, &device, 0).expect("builds");
    let [c, h, w] = g.input[..] else {
        panic!("{layer}: a map input")
    };
    let x = Tensor::<4>::from_data(TensorData::new(x, [2, c, h, w]), &device).require_grad();
    let n: usize = g.output.iter().product();
    let v = Tensor::<2>::from_data(
        TensorData::new(tensor(st, &format!("{name}.v")), [2, n]),
        &device,
    );
    let y = net.forward(x.clone());
    let grads = (y.clone() * v).sum().backward();
    let a = agree(
        &format!("{layer}: output"),
        &values(y.inner()),
        &tensor(st, &format!("{name}.y")),
    );
    let b = agree(
        &format!("{layer}: input gradient"),
        &values(x.grad(&grads).expect("input gradient")),
        &tensor(st, &format!("{name}.dx")),
    );
    eprintln!("{layer:<52} largest differences: output {a:e}, input gradient {b:e}");
}

/// Write `tensors` (name, values) as a safetensors weights file in `dir`.
fn weights_file(dir: &std::path::Path, tensors: &[(String, Vec<f32>)]) -> PathBuf {
    let path = dir.join("w.safetensors");
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(&str, safetensors::tensor::TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((k, v), b)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![v.len()], b)
                    .expect("view");
            (k.as_str(), view)
        })
        .collect();
    safetensors::serialize_to_file(views, None, &path).expect("write");
    path
}

#[test]
#[ignore = "needs scripts/ops.py's references (ARCHC_PARITY_DIR); CI runs it"]
fn norms_maxout_and_shuffle_match_pytorch() {
    let (path, bytes) = references();
    let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // (layer, reference, node name, input, affine)
    let cases = [
        ("layernorm", "layernorm2d", "a.layernorm1", "q", true),
        ("layernorm", "layernorm_flat", "a.layernorm1", "r", true),
        ("groupnorm 2", "groupnorm2", "a.groupnorm1", "q", true),
        ("groupnorm 3", "groupnorm3", "a.groupnorm1", "q", true),
        ("maxout 2", "maxout2", "", "q", false),
        ("maxout 3", "maxout3", "", "q", false),
        ("channel_shuffle 2", "shuffle2", "", "q", false),
        ("channel_shuffle 3", "shuffle3", "", "q", false),
    ];
    for (layer, name, node, input, affine) in cases {
        let (shape, dims): (&str, Vec<usize>) = if input == "q" {
            ("6x4x4", vec![2, 6, 4, 4])
        } else {
            ("6", vec![2, 6])
        };
        let g = common::lowered_str(&format!(
            "network n {{\n    input {shape}\n    a {layer}\n}}\n"
        ));
        let device = common::device().autodiff();
        let mut net = Network::new(&g, &device, 0).expect("builds");
        let dir = tempfile::tempdir().expect("tempdir");
        if affine {
            let w = weights_file(
                dir.path(),
                &[
                    (
                        format!("{node}.weight"),
                        tensor(&st, &format!("{name}.weight")),
                    ),
                    (format!("{node}.bias"), tensor(&st, &format!("{name}.bias"))),
                ],
            );
            net.load_weights(&w)
                .expect("weight and bias load by their PyTorch names");
        }
        let v = tensor(&st, &format!("{name}.v"));
        let n = v.len() / 2;
        let v = Tensor::<2>::from_data(TensorData::new(v, [2, n]), &device);
        let data = tensor(&st, input);
        let (y, dx, grads) = if dims.len() == 4 {
            let x =
                Tensor::<4>::from_data(TensorData::new(data, [2, 6, 4, 4]), &device).require_grad();
            let y = net.forward(x.clone());
            let grads = (y.clone() * v).sum().backward();
            (y, values(x.grad(&grads).expect("input gradient")), grads)
        } else {
            let x = Tensor::<2>::from_data(TensorData::new(data, [2, 6]), &device).require_grad();
            let y = net.try_forward_flat(x.clone()).expect("forward");
            let grads = (y.clone() * v).sum().backward();
            (y, values(x.grad(&grads).expect("input gradient")), grads)
        };
        let a = agree(
            &format!("{name}: output"),
            &values(y.inner()),
            &tensor(&st, &format!("{name}.y")),
        );
        let b = agree(
            &format!("{name}: input gradient"),
            &dx,
            &tensor(&st, &format!("{name}.dx")),
        );
        if affine {
            let Some(Layer::Unit(m)) = net.layer(node) else {
                panic!("{node} is a norm")
            };
            let dw = values(m.params[0].val().grad(&grads).expect("weight gradient"));
            let db = values(m.params[1].val().grad(&grads).expect("bias gradient"));
            // Sums over 32 positions and 2 samples: 1e-4 absolute.
            for (what, got, want) in [("weight", dw, "dweight"), ("bias", db, "dbias")] {
                let want = tensor(&st, &format!("{name}.{want}"));
                let worst = got
                    .iter()
                    .zip(&want)
                    .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
                assert!(worst <= 1e-4, "{name}: {what} gradient differs by {worst}");
            }
        }
        eprintln!("{name:<16} largest differences: output {a:e}, input gradient {b:e}");
    }
}

/// `spp`: PyTorch's `adaptive_max_pool2d` per level, flattened, the levels concatenated in the
/// order written; output and input gradient, where the levels divide the map (7, 2, 1 on
/// 14x14) and where they do not (3 on 14x14, everything but 1 on 13x13).
#[test]
#[ignore = "needs scripts/ops.py's references (ARCHC_PARITY_DIR); CI runs it"]
fn spatial_pyramid_pooling_matches_pytorch() {
    let (path, bytes) = references();
    let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (layer, name, side, levels) in [
        ("spp 7, 3, 2, 1", "spp_7321_14", 14, 63),
        ("spp 4, 2, 1", "spp_421_13", 13, 21),
        ("spp 1, 2, 3, 6", "spp_1236_13", 13, 50),
    ] {
        let g = common::lowered_str(&format!(
            "network n {{\n    input 3x{side}x{side}\n    a {layer}\n}}\n"
        ));
        assert_eq!(
            g.output,
            vec![3 * levels],
            "{layer}: 3 channels x {levels} bins"
        );
        forward_backward_agree(&st, &g, layer, name, tensor(&st, &format!("{name}.x")));
    }
}

/// Stochastic depth: the identity in evaluation; while training each sample is either zeroed
/// whole or scaled by 1/(1 − p), and about a fraction p of them are zeroed.
#[test]
fn drop_path_drops_whole_samples_while_training_only() {
    let g = common::lowered_str("network n {\n    input 2x3x3\n    a drop_path 0.25\n}\n");
    let device = common::device().autodiff();
    let net = Network::new(&g, &device, 0).expect("builds");
    let x = Tensor::<4>::ones([400, 2, 3, 3], &device);
    let y = values(net.forward(x.clone()));
    let mut zeroed = 0;
    for sample in y.chunks(18) {
        if sample.iter().all(|&v| v == 0.0) {
            zeroed += 1;
        } else {
            assert!(
                sample.iter().all(|&v| (v - 1.0 / 0.75).abs() < 1e-6),
                "{sample:?}"
            );
        }
    }
    // 400 draws of p = 0.25: 100 expected, standard deviation 8.7.
    assert!(
        (50..=150).contains(&zeroed),
        "{zeroed} of 400 samples dropped"
    );
    let y = values(net.valid().forward(x.inner()));
    assert!(y.iter().all(|&v| v == 1.0), "identity in evaluation");
}

/// A network that uses every new kind (each activation as `act:`, a layer and the setting;
/// PReLU; the norms; maxout; drop path; channel shuffle; a ceil-mode pool) trains: thirty SGD
/// steps (lr 0.05, momentum 0.9) on one fixed batch of 8 images on the test device (burn-flex,
/// and LibTorch CPU in CI) keep every loss finite and bring the last five below 0.6 of the
/// first, and the PReLU slopes and the norms' scales move.
#[test]
fn a_network_of_the_new_kinds_trains() {
    use burn::tensor::{Distribution, Int};

    let g = common::lowered_str(
        "network n {\n    input 3x12x12\n    act silu\n    a conv 3x3, 16, act: sigmoid\n    b conv 3x3, 16, act: tanh\n    c conv 3x3, 16, act: hardsigmoid\n    d maxpool 3x3, stride: 2, ceil_mode: true\n    e conv 3x3, 24, act: gelu\n    f groupnorm 3, channel_shuffle 3, prelu\n    g conv 1x1, 32, act: leaky_relu\n    h maxout 2, layernorm, drop_path 0.1\n    i conv 3x3, 32, act: hardswish\n    j conv 3x3, 32\n    head avgpool, fc 8\n}\n",
    );
    let ad = common::device().autodiff();
    let net = Network::new(&g, &ad, 7).expect("builds");
    let before = net.clone().valid();
    let x = Tensor::<4>::random([8, 3, 12, 12], Distribution::Normal(0.0, 1.0), &ad);
    let y = Tensor::<1, Int>::from_ints([0, 1, 2, 3, 4, 5, 6, 7], &ad);
    let (losses, net) = common::sgd_on_one_batch(net, x, y, 30, 0.05);
    eprintln!("new kinds, SGD losses: {losses:?}");
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    // Drop path and the input are random (unseeded): judge the last five steps together.
    let tail = losses[losses.len() - 5..].iter().sum::<f32>() / 5.0;
    assert!(tail < 0.6 * losses[0], "the loss falls: {losses:?}");
    // Every parameter tensor moved (PReLU slopes and the norms' scale and shift too).
    let after = net.valid();
    for (name, a, b) in [
        ("f.prelu1", &before, &after),
        ("f.groupnorm1", &before, &after),
        ("h.layernorm1", &before, &after),
    ] {
        let v = |n: &Network| match n.layer(name) {
            Some(Layer::PRelu(p)) => values(p.alpha.val()),
            Some(Layer::Unit(m)) => values(m.params[0].val()),
            _ => panic!("{name}"),
        };
        assert_ne!(v(a), v(b), "{name} was trained");
    }
}

/// `layer_scale`: `x · γ` per channel, `γ` starting at its init; a weights file's `[C, 1, 1]`
/// tensor (PyTorch's `layer_scale`) loads into it, and it trains.
#[test]
fn layer_scale_scales_each_channel_and_loads_its_weights() {
    let g = common::lowered_str("network n {\n    input 3x2x2\n    a layer_scale 0.5\n}\n");
    let device = common::device().autodiff();
    let mut net = Network::new(&g, &device, 0).expect("builds");
    let x = Tensor::<4>::from_data(
        TensorData::new(
            (0..24).map(|v| v as f32 - 12.0).collect::<Vec<_>>(),
            [2, 3, 2, 2],
        ),
        &device,
    );
    let y = values(net.forward(x.clone()).inner());
    let want: Vec<f32> = values(x.clone().inner()).iter().map(|v| v * 0.5).collect();
    assert_eq!(y, want, "the initial scale");
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!("{}.layer_scale", g.nodes[1].name);
    // PyTorch's `[C, 1, 1]`: a flat `[3]` is refused as mis-shaped.
    let flat = weights_file(dir.path(), &[(name.clone(), vec![1.0, -2.0, 3.0])]);
    assert!(
        net.load_weights(&flat).is_err(),
        "a [3] tensor is not [3, 1, 1]"
    );
    let w = dir.path().join("scale.safetensors");
    let bytes: Vec<u8> = [1.0f32, -2.0, 3.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![3, 1, 1], &bytes)
        .expect("view");
    safetensors::serialize_to_file(vec![(name.as_str(), view)], None, &w).expect("write");
    net.load_weights(&w).expect("loads by its PyTorch name");
    let y = values(net.forward(x.clone()).inner());
    let xs = values(x.clone().inner());
    for (i, (a, b)) in y.iter().zip(&xs).enumerate() {
        let gamma = [1.0, -2.0, 3.0][(i / 4) % 3];
        assert_eq!(*a, b * gamma, "element {i}");
    }
    let grads = net.forward(x).sum().backward();
    let Some(Layer::Unit(m)) = net.layer(&g.nodes[1].name) else {
        panic!("a unit layer")
    };
    // d(sum(x·γ))/dγ_c = sum of channel c over the batch.
    let dg = values(m.params[0].val().grad(&grads).expect("γ is trained"));
    let per_channel = |c: usize| -> f32 {
        (0..2)
            .flat_map(|n| (0..4).map(move |k| n * 12 + c * 4 + k))
            .map(|i| xs[i])
            .sum()
    };
    assert_eq!(dg, vec![per_channel(0), per_channel(1), per_channel(2)]);
}
