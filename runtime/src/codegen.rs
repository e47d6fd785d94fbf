//! Code generation: a lowered graph becomes a standalone Rust source file that defines the
//! network as a Burn 0.22 `#[derive(Module)]` struct with one field per layer and a
//! straight-line `forward`, as burn-onnx does for ONNX models. The file depends on `burn`
//! only (with the `flex` feature or any other backend); weights start from Burn's default
//! initialisers (the archc runtime initialises as torchvision does and loads weights).
//!
//! This is text written against Burn's API, so it lives in the runtime crate (the only crate
//! that knows Burn); each op's text sits with its forward (`ops::activation::rust_text`). The
//! runtime's tests compile a generated file.

use std::fmt::Write;

use archc_compiler::lower::{LoweredGraph, LoweredOp};

use crate::ops::activation;

/// `cifar_resnet20` → `CifarResnet20`.
pub fn type_name(network: &str) -> String {
    let mut s = String::new();
    for part in network.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut cs = part.chars();
        if let Some(c) = cs.next() {
            s.push(c.to_ascii_uppercase());
            s.extend(cs);
        }
    }
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "Net");
    }
    s
}

/// `layer1.0.conv1` → `layer1_0_conv1`.
fn field(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

fn pad(p: [usize; 2]) -> String {
    format!(
        "PaddingConfig2d::Explicit({}, {}, {}, {})",
        p[0], p[1], p[0], p[1]
    )
}

/// `.with_ceil_mode(true)` where it is on (Burn's default is off).
fn ceil(on: bool) -> &'static str {
    if on {
        "\n                .with_ceil_mode(true)"
    } else {
        ""
    }
}

fn arr(a: [usize; 2]) -> String {
    format!("[{}, {}]", a[0], a[1])
}

/// The field type and its initialiser, for nodes that hold a module.
fn module(op: &LoweredOp) -> Option<(&'static str, String)> {
    Some(match op {
        LoweredOp::Conv2d {
            channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
        } => (
            "Conv2d",
            format!(
                "Conv2dConfig::new({}, {})\n                .with_stride({})\n                .with_padding({})\n                .with_dilation({})\n                .with_groups({groups})\n                .with_bias({bias})\n                .init(device)",
                arr(*channels),
                arr(*kernel_size),
                arr(*stride),
                pad(*padding),
                arr(*dilation)
            ),
        ),
        LoweredOp::BatchNorm {
            num_features,
            epsilon,
            momentum,
        } => (
            "BatchNorm",
            format!(
                "BatchNormConfig::new({num_features})\n                .with_epsilon({epsilon:?})\n                .with_momentum({momentum:?})\n                .init(device)"
            ),
        ),
        LoweredOp::Linear {
            d_input,
            d_output,
            bias,
        } => (
            "Linear",
            format!("LinearConfig::new({d_input}, {d_output})\n                .with_bias({bias})\n                .init(device)"),
        ),
        LoweredOp::MaxPool2d {
            kernel_size,
            strides,
            padding,
            ceil_mode,
        } => (
            "MaxPool2d",
            format!(
                "MaxPool2dConfig::new({})\n                .with_strides({})\n                .with_padding({}){}\n                .init()",
                arr(*kernel_size),
                arr(*strides),
                pad(*padding),
                ceil(*ceil_mode)
            ),
        ),
        LoweredOp::AvgPool2d {
            kernel_size,
            strides,
            padding,
            count_include_pad,
            ceil_mode,
        } => (
            "AvgPool2d",
            format!(
                "AvgPool2dConfig::new({})\n                .with_strides({})\n                .with_padding({})\n                .with_count_include_pad({count_include_pad}){}\n                .init()",
                arr(*kernel_size),
                arr(*strides),
                pad(*padding),
                ceil(*ceil_mode)
            ),
        ),
        LoweredOp::AdaptiveAvgPool2d { output_size } => (
            "AdaptiveAvgPool2d",
            format!("AdaptiveAvgPool2dConfig::new({}).init()", arr(*output_size)),
        ),
        LoweredOp::Dropout { prob } => ("Dropout", format!("DropoutConfig::new({prob:?}).init()")),
        LoweredOp::PRelu { num_parameters } => (
            "PRelu",
            format!("PReluConfig::new().with_num_parameters({num_parameters}).init(device)"),
        ),
        _ => return None,
    })
}

/// The first node whose kind the generator cannot write yet (layer norm, group norm, maxout,
/// drop path, channel shuffle), as a message; `archc codegen` refuses such a network.
pub fn unsupported(l: &LoweredGraph) -> Option<String> {
    l.nodes.iter().find_map(|n| {
        matches!(n.op, LoweredOp::Unit { .. })
        .then(|| {
            format!(
                "`{}` has a {} node (`{}`), which archc codegen cannot write yet; the runtime builds and trains it (archc train)",
                l.network,
                n.op.kind(),
                n.name
            )
        })
    })
}

/// Generate the source of a module named after the network. A kind [`unsupported`] names is
/// written as a `compile_error!`, so such a file never builds silently wrong. `origin` is written in the header
/// (the file and command it came from).
pub fn generate(l: &LoweredGraph, origin: &str) -> String {
    let ty = type_name(&l.network);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "//! `{}` as a Burn module, generated by `archc codegen` from {origin}.\n//! Input [N, {}], logits [N, {}], {} trainable parameters. Do not edit; regenerate.\n",
        l.network,
        l.input.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
        l.output.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
        l.params
    );
    s.push_str(
        "#![allow(clippy::all, unused_imports)]\n\nuse burn::module::Module;\nuse burn::nn::conv::{Conv2d, Conv2dConfig};\nuse burn::nn::pool::{\n    AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig, MaxPool2d,\n    MaxPool2dConfig,\n};\nuse burn::nn::{\n    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,\n};\n",
    );
    if l.nodes
        .iter()
        .any(|n| matches!(n.op, LoweredOp::PRelu { .. }))
    {
        s.push_str("use burn::nn::{PRelu, PReluConfig};\n");
    }
    let _ = writeln!(
        s,
        "use burn::tensor::activation::{{{}}};\nuse burn::tensor::{{Device, Int, Tensor}};\n",
        activation::RUST_IMPORTS
    );
    let _ = writeln!(s, "#[derive(Module, Debug)]\npub struct {ty} {{");
    for n in &l.nodes {
        if let Some((t, _)) = module(&n.op) {
            let _ = writeln!(s, "    pub {}: {t},", field(&n.name));
        }
    }
    s.push_str("}\n\n");
    let _ = writeln!(s, "impl {ty} {{");
    s.push_str("    /// The network with Burn's default initialisation on `device`.\n    pub fn new(device: &Device) -> Self {\n        Self {\n");
    for n in &l.nodes {
        if let Some((_, init)) = module(&n.op) {
            let _ = writeln!(s, "            {}: {init},", field(&n.name));
        }
    }
    s.push_str("        }\n    }\n\n");
    let input_rank = if l.input.len() == 3 { 4 } else { 2 };
    let _ = writeln!(
        s,
        "    /// Logits for a batch: input [N, {}].\n    pub fn forward(&self, x0: Tensor<{input_rank}>) -> Tensor<2> {{",
        l.input.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
    );
    let rank = |id: usize| if l.nodes[id].output.len() == 3 { 4 } else { 2 };
    for n in l.nodes.iter().skip(1).take(l.logits) {
        let x = |k: usize| format!("x{}.clone()", n.inputs[k]);
        let f = field(&n.name);
        let r = rank(n.id);
        let expr = match &n.op {
            LoweredOp::Input => continue,
            LoweredOp::BatchNorm { .. }
            | LoweredOp::Conv2d { .. }
            | LoweredOp::Linear { .. }
            | LoweredOp::MaxPool2d { .. }
            | LoweredOp::AvgPool2d { .. }
            | LoweredOp::AdaptiveAvgPool2d { .. }
            | LoweredOp::Dropout { .. }
            | LoweredOp::PRelu { .. } => format!("self.{f}.forward({})", x(0)),
            LoweredOp::Act { act } => activation::rust_text(*act, &x(0)),
            LoweredOp::Unit { .. } => format!(
                "compile_error!(\"archc codegen cannot write {} yet\")",
                n.op.kind()
            ),
            LoweredOp::Softmax => format!("softmax({}, 1)", x(0)),
            LoweredOp::Flatten => {
                if rank(n.inputs[0]) == 4 {
                    format!("{}.flatten(1, 3)", x(0))
                } else {
                    x(0)
                }
            }
            LoweredOp::Add => format!("{} + {}", x(0), x(1)),
            LoweredOp::Highway { .. } => {
                format!("{} + ({} - {}) * sigmoid({})", x(1), x(0), x(1), x(2))
            }
            LoweredOp::ZeroPadSubsample {
                stride,
                pad_before,
                pad_after,
            } => format!(
                "zero_pad_subsample({}, {stride}, {pad_before}, {pad_after})",
                x(0)
            ),
        };
        let _ = writeln!(
            s,
            "        let x{}: Tensor<{r}> = {expr}; // {}",
            n.id, n.name
        );
    }
    if rank(l.logits) == 4 {
        let _ = writeln!(s, "        x{}.flatten(1, 3)\n    }}\n}}\n", l.logits);
    } else {
        let _ = writeln!(s, "        x{}\n    }}\n}}\n", l.logits);
    }
    if l.nodes
        .iter()
        .any(|n| matches!(n.op, LoweredOp::ZeroPadSubsample { .. }))
    {
        s.push_str(
            "/// Option A's shortcut: `x[:, :, ::stride, ::stride]`, then zero channels before and after.\nfn zero_pad_subsample(x: Tensor<4>, stride: usize, before: usize, after: usize) -> Tensor<4> {\n    let x = if stride > 1 {\n        let [_, _, h, w] = x.dims();\n        let rows = Tensor::<1, Int>::arange_step(0..h as i64, stride, &x.device());\n        let cols = Tensor::<1, Int>::arange_step(0..w as i64, stride, &x.device());\n        x.select(2, rows).select(3, cols)\n    } else {\n        x\n    };\n    let [n, _, h, w] = x.dims();\n    let device = x.device();\n    let mut parts = Vec::new();\n    if before > 0 {\n        parts.push(Tensor::zeros([n, before, h, w], &device));\n    }\n    parts.push(x);\n    if after > 0 {\n        parts.push(Tensor::zeros([n, after, h, w], &device));\n    }\n    Tensor::cat(parts, 1)\n}\n",
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_rust_identifiers() {
        assert_eq!(type_name("cifar_resnet20"), "CifarResnet20");
        assert_eq!(type_name("resnet50_tv"), "Resnet50Tv");
        assert_eq!(field("layer1.0.downsample.0"), "layer1_0_downsample_0");
        assert_eq!(field("features.3"), "features_3");
    }
}
