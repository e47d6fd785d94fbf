//! archc's runtime: the only crate that depends on Burn (0.22.1). It turns a compiled
//! network's [`LoweredGraph`](archc_compiler::lower::LoweredGraph) into a Burn module.
//!
//! - [`Network`]: a `#[derive(Module)]` built from a lowered graph on any [`Device`]
//!   (burn-flex by default, LibTorch with the `tch` feature), with `forward` (logits),
//!   `predict` (softmax), train/eval as Burn does it (autodiff device vs `.valid()`), and a
//!   trainable-parameter count equal to the compiler's.
//! - Initialisation as torchvision, reproducible from a seed on every backend: see
//!   `init` below.
//! - [`Network::load_weights`] / [`Network::save_weights`]: PyTorch state dicts and
//!   safetensors with torchvision's names (module [`weights`]).
//! - [`onnx::export`]: the network as an ONNX model (`archc export --format onnx`).
//!
//! # Initialisation
//!
//! Convolutions: Kaiming normal, fan_out, ReLU gain (`std = sqrt(2 / (out * kh * kw))`), bias 0;
//! batch norm: weight 1, bias 0; linear: PyTorch's default `U(±1/sqrt(fan_in))` for weight and
//! bias. Values come from archc's own per-parameter streams keyed by the seed, so the same seed
//! gives the same weights on every backend and in any thread (they differ from PyTorch's
//! numbers for the same seed).
//!
//! ```no_run
//! use archc_runtime::{Device, Network};
//! # fn f(graph: &archc_compiler::lower::LoweredGraph) -> Result<(), Box<dyn std::error::Error>> {
//! let device = Device::flex();
//! let net = Network::new(graph, &device, 42)?;
//! let x = burn::tensor::Tensor::<4>::zeros([1, 3, 32, 32], &device);
//! let logits = net.try_forward(x)?; // [1, classes]
//! # Ok(()) }
//! ```

mod check;
pub mod codegen;
pub mod data;
pub mod device;
#[cfg(feature = "flex")]
pub mod flex;
#[cfg(feature = "tch")]
pub mod fused;
mod init;
pub mod malloc;
mod network;
pub mod onnx;
pub mod ops;
pub mod precision;
pub mod pytorch;
pub mod train;
pub mod weights;

pub use burn::tensor::Device;
pub use check::BuildError;
pub use device::{check_devices, parse_device, parse_devices, DeviceError};
pub use network::{InputError, Network};
pub use ops::norm::batch_norm;
pub use ops::structure::zero_pad_subsample;
pub use ops::Layer;
pub use weights::{InitReport, LoadReport, Mismatch, ShapeMismatch, WeightError};
