//! Weights with torchvision's names: safetensors and PyTorch files, round trips, and one
//! clear error (never a panic) for files that do not fit or cannot be read.

mod common;

use std::path::{Path, PathBuf};

use archc_compiler::graph::Activation;
use archc_compiler::lower::{LoweredGraph, LoweredNode, LoweredOp};
use archc_runtime::{Device, Layer, Network, WeightError};
use burn::module::Module;
use burn::tensor::{Tensor, TensorData};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

fn tmp(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("archc-runtime-weights");
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn input(n: usize, hw: usize, device: &Device) -> Tensor<4> {
    let len = n * 3 * hw * hw;
    let v: Vec<f32> = (0..len)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    Tensor::<4>::from_data(TensorData::new(v, [n, 3, hw, hw]), device)
}

fn out(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().expect("f32")
}

/// cifar_resnet20 at 3x16x16, with non-default batch norm running statistics (one training
/// forward pass), in eval mode.
fn trained_net(seed: u64) -> Network {
    let g = common::lowered("cifar.arch", "cifar_resnet20", Some(&[3, 16, 16]));
    let ad = common::device().autodiff();
    let net = Network::new(&g, &ad, seed).expect("builds");
    let _ = net.forward(input(4, 16, &ad).mul_scalar(2.0).add_scalar(1.0));
    net.valid()
}

fn fresh(seed: u64) -> Network {
    let g = common::lowered("cifar.arch", "cifar_resnet20", Some(&[3, 16, 16]));
    Network::new(&g, &common::device(), seed).expect("builds")
}

/// A ConvNeXt block's `layer_scale` is saved in torchvision's shape `[C, 1, 1]` and loads back
/// (its module holds `[C]`), with the same outputs.
#[test]
fn layer_scale_saves_and_loads_in_torchvisions_shape() {
    let g = common::lowered_str(
        "network small {\n    input 3x8x8\n    classes 4\n    norm none\n    act none\n    \
         stem conv 3x3, 6, layer_scale 0.5\n    head avgpool, fc classes\n}\n",
    );
    let device = common::device();
    let a = Network::new(&g, &device, 3).expect("builds");
    let path = tmp("layer_scale.safetensors");
    a.save_weights(&path).expect("saves");
    let tensors = common::f32_tensors(&path);
    let (values, shape) = tensors
        .iter()
        .find(|(k, _)| k.ends_with("layer_scale"))
        .map(|(_, v)| v)
        .expect("a layer_scale tensor");
    assert_eq!(shape, &[6, 1, 1]);
    assert_eq!(values, &[0.5; 6]);
    let mut b = Network::new(&g, &device, 4).expect("builds");
    b.load_weights(&path).expect("loads what it saved");
    let x = input(2, 8, &device);
    assert_eq!(out(a.forward(x.clone())), out(b.forward(x)));
}

#[test]
fn save_then_load_gives_identical_outputs() {
    let a = trained_net(1);
    let x = input(2, 16, &common::device());
    let ya = out(a.forward(x.clone()));
    let path = tmp("roundtrip.safetensors");
    a.save_weights(&path).expect("saves");

    // torchvision names and layouts in the file.
    let bytes = std::fs::read(&path).expect("file");
    let st = SafeTensors::deserialize(&bytes).expect("valid safetensors");
    assert_eq!(
        st.tensor("conv1.weight").expect("key").shape(),
        &[16, 3, 3, 3]
    );
    assert_eq!(st.tensor("fc.weight").expect("key").shape(), &[10, 64]);
    assert_eq!(
        st.tensor("bn1.num_batches_tracked").expect("key").dtype(),
        Dtype::I64
    );
    assert!(st.tensor("layer1.0.bn2.running_var").is_ok());
    let rm = st.tensor("bn1.running_mean").expect("key");
    assert!(
        rm.data().iter().any(|&b| b != 0),
        "running statistics were saved"
    );

    let mut b = fresh(2);
    assert_ne!(
        out(b.forward(x.clone())),
        ya,
        "different seeds differ before loading"
    );
    let report = b.load_weights(&path).expect("loads");
    assert_eq!(
        report.applied,
        st.len() - 19,
        "every float tensor but num_batches_tracked"
    );
    assert_eq!(report.ignored.len(), 19);
    assert_eq!(out(b.forward(x)), ya);
}

#[test]
fn pytorch_files_written_without_torch_load() {
    let a = trained_net(3);
    let x = input(2, 16, &common::device());
    let ya = out(a.forward(x.clone()));
    let st = tmp("for_pth.safetensors");
    a.save_weights(&st).expect("saves");
    let script = fixture("st2pth.py");
    for (name, nest) in [("plain.pth", None), ("nested.pth", Some("state_dict"))] {
        let pth = tmp(name);
        let mut cmd = std::process::Command::new("python3");
        cmd.arg(&script).arg(&st).arg(&pth);
        if let Some(k) = nest {
            cmd.args(["--nest", k]);
        }
        match cmd.status() {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("st2pth.py failed: {s}"),
            // Every machine this project builds on has Python 3; a missing one is a failure,
            // not a silent pass.
            Err(e) => panic!("cannot run python3 for st2pth.py: {e}"),
        }
        let mut b = fresh(4);
        b.load_weights(&pth)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out(b.forward(x.clone())), ya, "{name}");
    }
}

/// conv 3->4 (bias) -> bn -> relu -> global average pool -> flatten -> fc 4->3.
fn tiny_graph() -> LoweredGraph {
    let node = |id, name: &str, op, inputs: Vec<usize>, output: Vec<usize>| LoweredNode {
        id,
        name: name.into(),
        op,
        inputs,
        output,
    };
    LoweredGraph {
        network: "tiny".into(),
        input: vec![3, 8, 8],
        output: vec![3],
        params: 108 + 4 + 8 + 12 + 3,
        nodes: vec![
            node(0, "input", LoweredOp::Input, vec![], vec![3, 8, 8]),
            node(
                1,
                "conv",
                LoweredOp::Conv2d {
                    channels: [3, 4],
                    kernel_size: [3, 3],
                    stride: [1, 1],
                    padding: [1, 1],
                    dilation: [1, 1],
                    groups: 1,
                    bias: true,
                },
                vec![0],
                vec![4, 8, 8],
            ),
            node(
                2,
                "bn",
                LoweredOp::BatchNorm {
                    num_features: 4,
                    epsilon: 1e-5,
                    momentum: 0.1,
                },
                vec![1],
                vec![4, 8, 8],
            ),
            node(
                3,
                "relu",
                LoweredOp::Act {
                    act: Activation::Relu,
                },
                vec![2],
                vec![4, 8, 8],
            ),
            node(
                4,
                "avgpool",
                LoweredOp::AdaptiveAvgPool2d {
                    output_size: [1, 1],
                },
                vec![3],
                vec![4, 1, 1],
            ),
            node(5, "flatten", LoweredOp::Flatten, vec![4], vec![4]),
            node(
                6,
                "fc",
                LoweredOp::Linear {
                    d_input: 4,
                    d_output: 3,
                    bias: true,
                },
                vec![5],
                vec![3],
            ),
        ],
        logits: 6,
        softmax: false,
        outputs: vec![],
    }
}

fn values(t: Tensor<1>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().expect("f32")
}

/// The committed fixtures (written by tests/fixtures/gen_tiny.py and st2pth.py): element j of
/// the t-th tensor is t * 1000 + j, in PyTorch layouts.
#[test]
fn committed_pth_and_safetensors_fixtures_load_with_torchvision_layouts() {
    let g = tiny_graph();
    let device = common::device();
    for file in ["tiny.pth", "tiny.safetensors"] {
        let mut net = Network::new(&g, &device, 0).expect("builds");
        assert_eq!(net.num_trainable_params(), g.params);
        let r = net
            .load_weights(fixture(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(r.applied, 8, "{file}");
        assert_eq!(
            r.ignored,
            vec!["bn.num_batches_tracked".to_string()],
            "{file}"
        );
        let Some(Layer::Conv(conv)) = net.layer("conv") else {
            panic!("conv")
        };
        let w = values(conv.weight.val().flatten(0, 3));
        assert_eq!(w, (0..108).map(|j| j as f32).collect::<Vec<_>>(), "{file}");
        assert_eq!(
            values(conv.bias.as_ref().expect("bias").val()),
            [1000., 1001., 1002., 1003.]
        );
        let Some(Layer::Norm(bn)) = net.layer("bn") else {
            panic!("bn")
        };
        assert_eq!(values(bn.gamma.val()), [2000., 2001., 2002., 2003.]);
        assert_eq!(values(bn.beta.val()), [3000., 3001., 3002., 3003.]);
        assert_eq!(
            values(bn.running_mean.value()),
            [4000., 4001., 4002., 4003.]
        );
        assert_eq!(values(bn.running_var.value()), [5000., 5001., 5002., 5003.]);
        let Some(Layer::Linear(fc)) = net.layer("fc") else {
            panic!("fc")
        };
        // PyTorch fc.weight[o][i] = 6000 + 4 * o + i; Burn holds [in, out].
        let w = fc.weight.val();
        assert_eq!(w.dims(), [4, 3]);
        let w = w.into_data().try_into_vec::<f32>().expect("f32");
        for i in 0..4 {
            for o in 0..3 {
                assert_eq!(
                    w[i * 3 + o],
                    6000.0 + (4 * o + i) as f32,
                    "{file}: [{i}][{o}]"
                );
            }
        }
        assert_eq!(
            values(fc.bias.as_ref().expect("bias").val()),
            [7000., 7001., 7002.]
        );
    }
}

/// Rewrite a safetensors file: drop `drop`, add `extra`, reshape `reshape` (same byte count is
/// not needed: its data is replaced), and retype `retype` to i32.
fn doctor(
    src: &Path,
    dst: &Path,
    drop: &str,
    extra: &str,
    reshape: (&str, Vec<usize>),
    retype: &str,
) {
    let bytes = std::fs::read(src).expect("file");
    let st = SafeTensors::deserialize(&bytes).expect("valid");
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, v) in st.tensors() {
        if name == drop {
            continue;
        }
        if name == reshape.0 {
            let n: usize = reshape.1.iter().product();
            owned.push((name, Dtype::F32, reshape.1.clone(), vec![0; 4 * n]));
        } else if name == retype {
            owned.push((name, Dtype::I32, v.shape().to_vec(), v.data().to_vec()));
        } else {
            owned.push((name, v.dtype(), v.shape().to_vec(), v.data().to_vec()));
        }
    }
    owned.push((extra.to_string(), Dtype::F32, vec![3], vec![0; 12]));
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(k, d, s, b)| (k.clone(), TensorView::new(*d, s.clone(), b).expect("view")))
        .collect();
    safetensors::serialize_to_file(views, None, dst).expect("writes");
}

#[test]
fn a_file_that_does_not_fit_gives_one_error_naming_every_key() {
    let a = trained_net(5);
    let good = tmp("good.safetensors");
    a.save_weights(&good).expect("saves");
    let bad = tmp("bad.safetensors");
    doctor(
        &good,
        &bad,
        "fc.bias",
        "extra.weight",
        ("conv1.weight", vec![16, 3, 5, 5]),
        "bn1.weight",
    );

    let mut b = fresh(6);
    let x = input(1, 16, &common::device());
    let before = out(b.forward(x.clone()));
    let err = b.load_weights(&bad).expect_err("must not load");
    let text = err.to_string();
    match &err {
        WeightError::Mismatch(m) => {
            let (missing, unexpected, mis_shaped, wrong_dtype) =
                (&m.missing, &m.unexpected, &m.mis_shaped, &m.wrong_dtype);
            assert_eq!(missing, &[("fc.bias".to_string(), vec![10])]);
            assert_eq!(unexpected, &[("extra.weight".to_string(), vec![3])]);
            assert_eq!(mis_shaped.len(), 1);
            assert_eq!(mis_shaped[0].key, "conv1.weight");
            assert_eq!(mis_shaped[0].expected, [16, 3, 3, 3]);
            assert_eq!(mis_shaped[0].found, [16, 3, 5, 5]);
            assert_eq!(
                wrong_dtype,
                &[("bn1.weight".to_string(), "i32".to_string())]
            );
        }
        e => panic!("expected a mismatch, got {e}"),
    }
    for needle in [
        "fc.bias",
        "extra.weight",
        "conv1.weight",
        "[16, 3, 5, 5]",
        "bn1.weight",
        "nothing was loaded",
    ] {
        assert!(text.contains(needle), "`{needle}` not in:\n{text}");
    }
    // All or nothing: the network is unchanged.
    assert_eq!(out(b.forward(x)), before);
}

#[test]
fn unreadable_files_give_errors_not_panics() {
    let good = tmp("good2.safetensors");
    trained_net(7).save_weights(&good).expect("saves");
    let st_bytes = std::fs::read(&good).expect("file");
    let pth_bytes = std::fs::read(fixture("tiny.pth")).expect("fixture");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "truncated.safetensors",
            st_bytes[..st_bytes.len() / 2].to_vec(),
        ),
        ("header_only.safetensors", st_bytes[..64].to_vec()),
        (
            "garbage.safetensors",
            (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ),
        ("empty.safetensors", Vec::new()),
        ("truncated.pth", pth_bytes[..pth_bytes.len() / 2].to_vec()),
        (
            "truncated_end.pth",
            pth_bytes[..pth_bytes.len() - 30].to_vec(),
        ),
        (
            "garbage.pth",
            (0..4096u32).map(|i| (i * 104_729 % 253) as u8).collect(),
        ),
        ("text.pt", b"definitely not a checkpoint".to_vec()),
    ];
    for (name, bytes) in cases {
        let path = tmp(name);
        std::fs::write(&path, bytes).expect("writes");
        let mut net = fresh(8);
        match net.load_weights(&path) {
            Err(WeightError::Format { .. }) => {}
            Err(e) => panic!("{name}: expected a format error, got {e}"),
            Ok(_) => panic!("{name}: loaded"),
        }
    }
    // A tiny.pth flipped inside a tensor's bytes still parses but fails its checksum or loads
    // other numbers; either way, no panic.
    let mut flipped = pth_bytes.clone();
    let at = flipped.len() - 200;
    flipped[at] ^= 0xFF;
    let path = tmp("flipped.pth");
    std::fs::write(&path, flipped).expect("writes");
    let _ = Network::new(&tiny_graph(), &common::device(), 0)
        .expect("builds")
        .load_weights(&path);

    let mut net = fresh(9);
    match net.load_weights(tmp("does_not_exist.safetensors")) {
        Err(WeightError::Io { .. }) => {}
        r => panic!("expected an I/O error, got {r:?}"),
    }
}

#[test]
fn a_bad_graph_is_an_error_not_a_panic() {
    let mut g = tiny_graph();
    if let LoweredOp::Conv2d { channels, .. } = &mut g.nodes[1].op {
        channels[0] = 5;
    }
    let e = Network::new(&g, &common::device(), 0).expect_err("channel mismatch");
    assert!(e.to_string().contains("conv"), "{e}");
    let mut g = tiny_graph();
    g.nodes[6].inputs = vec![6];
    assert!(Network::new(&g, &common::device(), 0).is_err());
    let g = tiny_graph();
    let net = Network::new(&g, &common::device(), 0).expect("builds");
    let e = net
        .try_forward(Tensor::<4>::zeros([1, 3, 9, 8], &common::device()))
        .expect_err("wrong input size");
    assert!(e.to_string().contains("3, 8, 8"), "{e}");
}

/// A 1x1 conv's weight stored as `nn.Linear`'s `[out, in]` (torchvision's ConvNeXt) loads, by
/// `load_weights` and by `--init`'s `load_init` alike, to the same outputs as `[out, in, 1, 1]`;
/// a 3x3 conv's weight flattened the same way (`[out, in·9]`) is refused by both.
#[test]
fn pointwise_weights_load_from_linear_layout() {
    let src = "network n {\n    input 3x4x4\n    norm none\n    a conv 1x1, 5\n    b conv 3x3, 4\n    head avgpool, fc 2\n}\n";
    let g = common::lowered_str(src);
    let device = common::device();
    let a = Network::new(&g, &device, 3).expect("builds");
    let saved = tmp("pointwise.safetensors");
    a.save_weights(&saved).expect("saves");
    let x = input(2, 4, &device);
    let ya = out(a.forward(x.clone()));
    let pointwise = g
        .nodes
        .iter()
        .find(|n| n.name.starts_with("a."))
        .expect("a");
    let square = g
        .nodes
        .iter()
        .find(|n| n.name.starts_with("b."))
        .expect("b");
    let rewrite = |key: &str, dst: &Path| {
        let bytes = std::fs::read(&saved).expect("file");
        let st = SafeTensors::deserialize(&bytes).expect("valid");
        let owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
            .tensors()
            .into_iter()
            .map(|(name, v)| {
                let shape = if name == key {
                    // [out, in, kh, kw] as [out, in·kh·kw]: [out, in] for a 1x1 conv.
                    let d = v.shape();
                    vec![d[0], d[1..].iter().product()]
                } else {
                    v.shape().to_vec()
                };
                (name, v.dtype(), shape, v.data().to_vec())
            })
            .collect();
        let views: Vec<(String, TensorView)> = owned
            .iter()
            .map(|(k, d, s, b)| (k.clone(), TensorView::new(*d, s.clone(), b).expect("view")))
            .collect();
        safetensors::serialize_to_file(views, None, dst).expect("writes");
    };
    let linear = tmp("pointwise_linear.safetensors");
    rewrite(&format!("{}.weight", pointwise.name), &linear);
    let mut b = Network::new(&g, &device, 9).expect("builds");
    b.load_weights(&linear).expect("[out, in] fills a 1x1 conv");
    assert_eq!(out(b.forward(x.clone())), ya);
    let mut c = Network::new(&g, &device, 9).expect("builds");
    c.load_init(&linear, false).expect("--init takes it too");
    assert_eq!(out(c.forward(x)), ya);

    let flat3x3 = tmp("square_linear.safetensors");
    rewrite(&format!("{}.weight", square.name), &flat3x3);
    let mut d = Network::new(&g, &device, 9).expect("builds");
    assert!(d.load_weights(&flat3x3).is_err());
    let mut e = Network::new(&g, &device, 9).expect("builds");
    assert!(e.load_init(&flat3x3, false).is_err());
}
