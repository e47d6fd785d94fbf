//! `archc report` and `archc table`.

use std::path::Path;

use archc_compiler::analysis::{analyse, NetworkReport};
use archc_compiler::report::figure;
use archc_compiler::report::training::TrainingView;
use archc_compiler::training::{self, Machine, Optimizer, Precision, TrainingModel};
use archc_compiler::{build_networks, report, Overrides, TypedGraph};

use super::{load, print_diagnostics, select, Failure};
use crate::cli::{Format, GraphFormat, LowerFormat, PrecisionArg, StateOptimizerArg, TrainingArgs};

pub fn report(
    path: &Path,
    networks: &[String],
    format: Format,
    per_layer: bool,
    batch_sizes: &[u64],
    training: &TrainingArgs,
    ov: &Overrides,
) -> Result<(), Failure> {
    let Some(&batch_size) = batch_sizes.first() else {
        eprintln!("archc: --batch-size needs a size, such as 32");
        return Err(Failure::Usage);
    };
    if batch_sizes.len() > 1 && !training.training {
        eprintln!(
            "archc: several batch sizes need --training (one column each); the activation figure takes one"
        );
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
    if training.training {
        let views: Vec<_> = nets
            .iter()
            .map(|t| training_view(t, batch_sizes, training))
            .collect();
        print!("{}", render_training(&reports, &views, format, per_layer));
        return Ok(());
    }
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

/// One network's training figures: the first batch size in full, every size's totals, the
/// fit and the estimates the flags ask for.
fn training_view(t: &TypedGraph, batch_sizes: &[u64], a: &TrainingArgs) -> TrainingView {
    let options = training::Options {
        optimizer: match a.optimizer.unwrap_or(StateOptimizerArg::Momentum) {
            StateOptimizerArg::Sgd => Optimizer::Sgd,
            StateOptimizerArg::Momentum => Optimizer::Momentum,
            StateOptimizerArg::Adam => Optimizer::Adam,
        },
        precision: match a.precision.unwrap_or(PrecisionArg::F32) {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::Bf16 => Precision::Bf16,
            PrecisionArg::F16Mixed => Precision::F16Mixed,
        },
    };
    let model = TrainingModel::new(t, options);
    let machine = match (a.peak_tflops, a.bandwidth) {
        (Some(tflops), Some(bandwidth)) => Some(Machine {
            peak_flops: tflops * 1e12,
            bandwidth,
            dataset_size: a
                .dataset_size
                .unwrap_or_else(|| model.default_dataset_size()),
        }),
        _ => None,
    };
    let totals = |b: u64| {
        let mut tt = model.totals(b);
        tt.estimate = machine.map(|m| model.estimate(b, &m));
        tt
    };
    let mut main = model.report(batch_sizes[0]);
    main.totals.estimate = machine.map(|m| model.estimate(batch_sizes[0], &m));
    main.fit = a.memory.map(|m| model.fit(m));
    let sweep = if batch_sizes.len() > 1 {
        batch_sizes.iter().map(|&b| totals(b)).collect()
    } else {
        Vec::new()
    };
    TrainingView { main, sweep }
}

fn render_training(
    reports: &[NetworkReport],
    views: &[TrainingView],
    format: Format,
    per_layer: bool,
) -> String {
    match format {
        Format::Json => {
            let all: Vec<serde_json::Value> = reports
                .iter()
                .zip(views)
                .map(|(r, v)| {
                    let mut o = serde_json::to_value(r).expect("reports serialise");
                    o["training"] = serde_json::to_value(&v.main).expect("reports serialise");
                    if !v.sweep.is_empty() {
                        o["training_sweep"] =
                            serde_json::to_value(&v.sweep).expect("reports serialise");
                    }
                    o
                })
                .collect();
            serde_json::to_string_pretty(&all).expect("reports serialise") + "\n"
        }
        Format::Table => reports
            .iter()
            .zip(views)
            .map(|(r, v)| report::training::render(r, v, per_layer))
            .collect::<Vec<_>>()
            .join("\n"),
        Format::Markdown => reports
            .iter()
            .zip(views)
            .map(|(r, v)| report::training::markdown(r, v, per_layer))
            .collect::<Vec<_>>()
            .join("\n"),
    }
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
pub(super) fn emit(out: Option<&Path>, text: &str) -> Result<(), Failure> {
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
