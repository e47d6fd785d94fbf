//! `archc export`: a network with its weights (or the seeded initialisation) as an ONNX model
//! (`archc_runtime::onnx`; docs/export.md).

use std::path::{Path, PathBuf};

use archc_compiler::Overrides;

use super::Failure;
use crate::cli::ExportFormat;

/// The flags besides the file, network, format and overrides.
#[cfg_attr(not(feature = "runtime"), allow(dead_code))]
pub struct Options {
    pub out: Option<PathBuf>,
    pub weights: Option<PathBuf>,
    pub seed: u64,
    pub opset: Option<i64>,
}

#[cfg(not(feature = "runtime"))]
pub fn run(
    _file: &Path,
    _network: &str,
    _format: ExportFormat,
    _opts: Options,
    _ov: &Overrides,
) -> Result<(), Failure> {
    super::needs_runtime("export")
}

#[cfg(feature = "runtime")]
pub fn run(
    file: &Path,
    network: &str,
    format: ExportFormat,
    opts: Options,
    ov: &Overrides,
) -> Result<(), Failure> {
    use archc_runtime::onnx;
    use archc_runtime::train::checkpoint;
    use archc_runtime::Network;

    if format == ExportFormat::Pytorch {
        eprintln!("archc: --format pytorch is not available in this build (--format onnx is)");
        return Err(Failure::Usage);
    }
    let opset = opts.opset.unwrap_or(onnx::DEFAULT_OPSET);
    if !(onnx::MIN_OPSET..=onnx::MAX_OPSET).contains(&opset) {
        eprintln!("archc: {}", onnx::ExportError::Opset(opset));
        return Err(Failure::Usage);
    }
    let input_error = |e: &dyn std::fmt::Display| {
        eprintln!("archc: {e}");
        Failure::Input
    };
    let graph = super::lowered(file, network, ov)?;
    let device = super::device("cpu")?;
    let mut net = Network::new(&graph, &device, opts.seed).map_err(|e| input_error(&e))?;
    if let Some(w) = &opts.weights {
        let at = checkpoint::weights_at(w);
        net.load_weights(&at.model).map_err(|e| input_error(&e))?;
        if let Some(mean) = &at.mean {
            eprintln!(
                "archc: note: the checkpoint's input mean (`{}`) is not part of the model: \
                 subtract it from the input first, as `archc forward` does",
                mean.display()
            );
        }
    }
    let out = opts
        .out
        .unwrap_or_else(|| PathBuf::from(format!("{network}.onnx")));
    let bytes = onnx::export(&net, opset, &out).map_err(|e| input_error(&e))?;
    println!(
        "wrote `{}` (ONNX opset {opset}, {:.1} MB)",
        out.display(),
        bytes as f64 / 1e6
    );
    Ok(())
}
