//! `archc export`: a network as a PyTorch module (`archc_runtime::pytorch`, the ops' PyTorch
//! forms) or as ONNX.

use std::path::Path;

use archc_compiler::Overrides;

use super::Failure;
use crate::cli::ExportFormat;

/// `archc export`'s flags besides the network and format.
pub struct Options<'a> {
    pub out: Option<&'a Path>,
    pub weights: Option<&'a Path>,
    pub opset: Option<u32>,
}

pub fn run(
    path: &Path,
    network: &str,
    format: ExportFormat,
    opts: Options,
    ov: &Overrides,
) -> Result<(), Failure> {
    match format {
        ExportFormat::Onnx => {
            eprintln!("archc: `--format onnx` is not available in this build of archc");
            Err(Failure::Usage)
        }
        ExportFormat::Pytorch => {
            for (flag, set) in [
                ("--weights", opts.weights.is_some()),
                ("--opset", opts.opset.is_some()),
            ] {
                if set {
                    eprintln!(
                        "archc: {flag} applies to `--format onnx` only; a PyTorch module loads weights with `load_state_dict` (docs/export.md)"
                    );
                    return Err(Failure::Usage);
                }
            }
            pytorch(path, network, opts.out, ov)
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

#[cfg(not(feature = "runtime"))]
fn pytorch(_: &Path, _: &str, _: Option<&Path>, _: &Overrides) -> Result<(), Failure> {
    super::needs_runtime("export")
}
