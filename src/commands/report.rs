//! `archc report` and `archc table`.

use std::path::Path;

use archc_compiler::analysis::analyse;
use archc_compiler::report::figure;
use archc_compiler::{build_networks, report, Overrides};

use super::{load, print_diagnostics, select, Failure};
use crate::cli::{Format, GraphFormat, LowerFormat};

pub fn report(
    path: &Path,
    networks: &[String],
    format: Format,
    per_layer: bool,
    batch_size: u64,
    ov: &Overrides,
) -> Result<(), Failure> {
    if batch_size == 0 {
        eprintln!("archc: --batch-size must be at least 1");
        return Err(Failure::Usage);
    }
    let (sources, prog) = load(path)?;
    let names = select(&prog, networks, path)?;
    let (nets, diags) = build_networks(&prog, &names, ov);
    if !diags.is_empty() {
        print_diagnostics(&diags, &sources);
        return Err(Failure::Input);
    }
    let reports: Vec<_> = nets.iter().map(|t| analyse(t, batch_size)).collect();
    let out = match format {
        Format::Json => report::json(&reports) + "\n",
        Format::Table => reports
            .iter()
            .map(|r| report::table::render(r, per_layer))
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Markdown => reports
            .iter()
            .map(|r| report::markdown::render(r, per_layer))
            .collect::<Vec<_>>()
            .join("\n"),
    };
    print!("{out}");
    Ok(())
}

pub fn table(path: &Path, networks: &[String], ov: &Overrides) -> Result<(), Failure> {
    let (sources, prog) = load(path)?;
    let names = select(&prog, networks, path)?;
    let (nets, diags) = build_networks(&prog, &names, ov);
    if !diags.is_empty() {
        print_diagnostics(&diags, &sources);
        return Err(Failure::Input);
    }
    let cols: Vec<_> = nets.iter().map(|t| (t, analyse(t, 1).macs)).collect();
    print!("{}", report::paper::render(&cols));
    Ok(())
}

pub fn lower(
    path: &Path,
    network: &str,
    format: LowerFormat,
    ov: &Overrides,
) -> Result<(), Failure> {
    let (sources, prog) = load(path)?;
    let names = select(&prog, &[network.to_string()], path)?;
    let (nets, diags) = build_networks(&prog, &names, ov);
    if !diags.is_empty() {
        print_diagnostics(&diags, &sources);
        return Err(Failure::Input);
    }
    let lowered = archc_compiler::lower::lower(&nets[0]);
    match format {
        LowerFormat::Text => print!("{}", archc_compiler::lower::to_text(&lowered)),
        LowerFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&lowered).expect("lowered graphs serialise")
        ),
    }
    Ok(())
}

/// `archc codegen`: Burn API text, so it is the runtime crate's (`archc_runtime::codegen`).
#[cfg(feature = "runtime")]
pub fn codegen(
    path: &Path,
    network: &str,
    out: Option<&Path>,
    ov: &Overrides,
) -> Result<(), Failure> {
    let lowered = super::lowered(path, network, ov)?;
    if let Some(why) = archc_runtime::codegen::unsupported(&lowered) {
        eprintln!("archc: {why}");
        return Err(Failure::Usage);
    }
    let origin = format!("`{}`", path.display());
    let code = archc_runtime::codegen::generate(&lowered, &origin);
    emit(out, &code)
}

#[cfg(not(feature = "runtime"))]
pub fn codegen(
    _path: &Path,
    _network: &str,
    _out: Option<&Path>,
    _ov: &Overrides,
) -> Result<(), Failure> {
    super::needs_runtime("codegen")
}

/// `archc graph`: the network drawn as the paper's Figure 3.
pub fn graph(
    path: &Path,
    network: &str,
    format: GraphFormat,
    expand: bool,
    out: Option<&Path>,
    ov: &Overrides,
) -> Result<(), Failure> {
    let (sources, prog) = load(path)?;
    let names = select(&prog, &[network.to_string()], path)?;
    let (nets, diags) = build_networks(&prog, &names, ov);
    if !diags.is_empty() {
        print_diagnostics(&diags, &sources);
        return Err(Failure::Input);
    }
    let fig = figure::figure(&nets[0], expand);
    let text = match format {
        GraphFormat::Dot => figure::dot(&fig),
        GraphFormat::Svg => figure::svg(&fig),
    };
    emit(out, &text)
}

/// Print `text`, or write it to `out` through a temporary file renamed over it, so an existing
/// file is never left half-written.
fn emit(out: Option<&Path>, text: &str) -> Result<(), Failure> {
    let Some(o) = out else {
        print!("{text}");
        return Ok(());
    };
    let mut tmp = o.as_os_str().to_owned();
    tmp.push(".archc-tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let written = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, o));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        eprintln!("archc: cannot write `{}`: {e}", o.display());
        return Err(Failure::Usage);
    }
    Ok(())
}
