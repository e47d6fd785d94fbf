//! `archc export`: a network as a PyTorch module (`archc_runtime::pytorch`, the ops' PyTorch
//! forms) or as an ONNX model with its weights or the seeded initialisation
//! (`archc_runtime::onnx`, the ops' ONNX nodes); docs/export.md.

use std::path::{Path, PathBuf};

use archc_compiler::Overrides;

use super::Failure;
use crate::cli::ExportFormat;

/// `archc export`'s flags besides the file, network, format and overrides.
#[cfg_attr(not(feature = "runtime"), allow(dead_code))]
pub struct Options {
    pub out: Option<PathBuf>,
    pub weights: Option<PathBuf>,
    pub seed: Option<u64>,
    pub opset: Option<i64>,
}

pub fn run(
    path: &Path,
    network: &str,
    format: ExportFormat,
    opts: Options,
    ov: &Overrides,
) -> Result<(), Failure> {
    match format {
        ExportFormat::Onnx => onnx(path, network, opts, ov),
        ExportFormat::Pytorch => {
            for (flag, set) in [
                ("--weights", opts.weights.is_some()),
                ("--seed", opts.seed.is_some()),
                ("--opset", opts.opset.is_some()),
            ] {
                if set {
                    eprintln!(
                        "archc: {flag} applies to `--format onnx` only; a PyTorch module loads weights with `load_state_dict` (docs/export.md)"
                    );
                    return Err(Failure::Usage);
                }
            }
            pytorch(path, network, opts.out.as_deref(), ov)
        }
    }
}

#[cfg(feature = "runtime")]
fn pytorch(path: &Path, network: &str, out: Option<&Path>, ov: &Overrides) -> Result<(), Failure> {
    use archc_runtime::pytorch::{self, StageNote};

    let (sources, prog) = super::load(path)?;
    let names = super::select(&prog, &[network.to_string()], path)?;
    let (nets, diags) = archc_compiler::build_networks(&prog, &names, ov);
    if !diags.is_empty() {
        super::print_diagnostics(&diags, &sources);
        return Err(Failure::Input);
    }
    let Some(t) = nets.first() else {
        return Err(Failure::Usage);
    };
    let (lowered, origin) = archc_compiler::lower::lower_traced(t);
    if let Some(why) = pytorch::unsupported(&lowered) {
        eprintln!("archc: {why}");
        return Err(Failure::Usage);
    }
    // Each node's stage, with its line of the .arch file for the forward's comments.
    let g = &t.graph;
    let stages: Vec<Option<StageNote>> = origin
        .iter()
        .map(|&o| {
            let s = &g.stages[g.nodes.get(o)?.stage?];
            let text = sources
                .text(s.span.file)
                .get(s.span.start..s.span.end)
                .and_then(|t| t.lines().next())
                .map_or_else(|| s.name.clone(), |t| t.trim().to_string());
            Some(StageNote {
                name: s.name.clone(),
                text,
            })
        })
        .collect();
    let origin_text = format!("`{}`", path.display());
    let code = pytorch::generate(&lowered, &stages, &origin_text);
    super::report::emit(out, &code)
}

#[cfg(feature = "runtime")]
fn onnx(file: &Path, network: &str, opts: Options, ov: &Overrides) -> Result<(), Failure> {
    use archc_runtime::onnx;
    use archc_runtime::train::checkpoint;
    use archc_runtime::Network;

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
    let mut net =
        Network::new(&graph, &device, opts.seed.unwrap_or(0)).map_err(|e| input_error(&e))?;
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

#[cfg(not(feature = "runtime"))]
fn pytorch(_: &Path, _: &str, _: Option<&Path>, _: &Overrides) -> Result<(), Failure> {
    super::needs_runtime("export")
}

#[cfg(not(feature = "runtime"))]
fn onnx(_: &Path, _: &str, _: Options, _: &Overrides) -> Result<(), Failure> {
    super::needs_runtime("export")
}
