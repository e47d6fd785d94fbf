//! Parity with PyTorch: torchvision's resnet18, resnet50 (archc's resnet50_tv), vgg11_bn,
//! resnext50_32x4d, wide_resnet50_2, mobilenet_v2, googlenet, densenet121, shufflenet_v2_x1_0,
//! mobilenet_v3_large, efficientnet_b0, convnext_tiny and inception_v3 and a PyTorch CIFAR ResNet-20
//! with option A, with
//! seeded random weights and non-default batch norm statistics, loaded into the archc-compiled
//! networks by torchvision's names: eval-mode outputs agree within 1e-4 relative to the largest
//! logit (absolute where the logits stay below 1; they are of order 0.5 to 30).
//!
//! The references come from `scripts/parity.py` (torch 2.9.0, torchvision 0.24.0), which CI
//! runs first; this test is `#[ignore]`d in a plain `cargo test` (there is no PyTorch there)
//! and CI runs it with `ARCHC_PARITY_DIR=... cargo test -p archc-runtime --test parity --
//! --ignored`. Without the references it fails: it never passes vacuously.

mod common;

use std::path::{Path, PathBuf};

use archc_runtime::Network;
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

#[derive(Deserialize)]
struct Entry {
    name: String,
    file: String,
    network: String,
    input: Vec<u64>,
    params: u64,
}

fn dir() -> PathBuf {
    let d = std::env::var("ARCHC_PARITY_DIR").expect(
        "ARCHC_PARITY_DIR must name the folder scripts/parity.py wrote (python3 scripts/parity.py DIR)",
    );
    PathBuf::from(d)
}

/// A float32 tensor of a safetensors file, with its shape.
fn read(path: &Path, name: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let t = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("{}: {name}: {e}", path.display()));
    assert_eq!(t.dtype(), Dtype::F32, "{name} is f32");
    let v = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (v, t.shape().to_vec())
}

/// The largest |archc − PyTorch| over the outputs, and the largest |PyTorch| (their scale).
fn check(e: &Entry, weights: &Path) -> (f32, f32) {
    let g = common::lowered(
        Path::new(&e.file).file_name().unwrap().to_str().unwrap(),
        &e.network,
        Some(&e.input),
    );
    assert_eq!(
        g.params, e.params,
        "{}: parameter count of the PyTorch model",
        e.name
    );
    let device = common::device();
    let mut net = Network::new(&g, &device, 0).expect("builds");
    net.load_weights(weights)
        .unwrap_or_else(|err| panic!("{}: {err}", weights.display()));
    let io = dir().join(format!("{}.io.safetensors", e.name));
    let (x, xs) = read(&io, "input");
    let (y, ys) = read(&io, "output");
    let x = Tensor::<4>::from_data(TensorData::new(x, [xs[0], xs[1], xs[2], xs[3]]), &device);
    let ours = net
        .try_forward(x)
        .unwrap_or_else(|err| panic!("{}: {err}", e.name))
        .into_data()
        .try_to_vec::<f32>()
        .expect("f32 logits");
    assert_eq!(ours.len(), y.len(), "{}: output size {ys:?}", e.name);
    let diff = ours
        .iter()
        .zip(&y)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    (diff, y.iter().map(|v| v.abs()).fold(0.0f32, f32::max))
}

#[test]
#[ignore = "needs the PyTorch references of scripts/parity.py in ARCHC_PARITY_DIR; CI runs it"]
fn outputs_agree_with_pytorch() {
    let manifest = std::fs::read_to_string(dir().join("manifest.json")).expect("manifest.json");
    let entries: Vec<Entry> = serde_json::from_str(&manifest).expect("manifest parses");
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "resnet18",
            "resnet50_tv",
            "vgg11_bn",
            "cifar_resnet20",
            "resnext50_32x4d",
            "wide_resnet50_2",
            "mobilenet_v2",
            "googlenet",
            "densenet121",
            "shufflenet_v2_x1_0",
            "mobilenet_v3_large",
            "efficientnet_b0",
            "convnext_tiny",
            "inception_v3"
        ],
        "the networks of scripts/parity.py"
    );
    for e in &entries {
        let start = std::time::Instant::now();
        let (diff, scale) = check(e, &dir().join(format!("{}.safetensors", e.name)));
        println!(
            "{}: max |archc - pytorch| = {diff:e} (max |pytorch| = {scale:.3}; {:.1} s)",
            e.name,
            start.elapsed().as_secs_f64()
        );
        // 1e-4 relative to the largest logit (absolute below 1): float32 sums over a deep
        // network drift with the logits' size (efficientnet_b0's reach 31 here).
        let tolerance = 1e-4 * scale.max(1.0);
        assert!(
            diff < tolerance,
            "{}: outputs differ by {diff} (tolerance {tolerance:e})",
            e.name
        );
        if e.name == "resnet18" {
            // The same weights as a PyTorch pickle (torch.save of the state dict).
            let (diff, _) = check(e, &dir().join("resnet18.pth"));
            println!("resnet18 from .pth: max |archc - pytorch| = {diff:e}");
            assert!(diff < 1e-4, "resnet18.pth: outputs differ by {diff}");
        }
    }
}
