//! What each subcommand does. Errors are rendered here; the exit code says what kind.

mod check;
mod diff;
mod eval;
mod export;
mod fmt;
mod forward;
mod layers;
mod plot;
mod report;
mod train;

use std::io::IsTerminal;
use std::path::Path;

use archc_compiler::{Diagnostics, LoadError, Overrides, Program, SourceSet};

use crate::cli::{Cli, Command, OverrideArgs};

/// Why a command failed: the input has errors (1) or the command line is wrong (2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Input,
    Usage,
    /// A run stopped by Ctrl-C or SIGTERM (after saving).
    #[cfg_attr(not(feature = "runtime"), allow(dead_code))]
    Interrupted,
}

impl Failure {
    pub fn as_u8(self) -> u8 {
        match self {
            Failure::Input => 1,
            Failure::Usage => 2,
            Failure::Interrupted => 130,
        }
    }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Check { files, overrides } => check::run(&files, &overrides.into()),
        Command::Report {
            file,
            network,
            format,
            per_layer,
            batch_size,
            training,
            overrides,
        } => report::report(
            &file,
            &network,
            format,
            per_layer,
            &batch_size,
            &training,
            &overrides.into(),
        ),
        Command::Lower {
            file,
            network,
            format,
            overrides,
        } => report::lower(&file, &network, format, &overrides.into()),
        Command::Graph {
            file,
            network,
            format,
            expand,
            out,
            overrides,
        } => report::graph(
            &file,
            &network,
            format,
            expand,
            out.as_deref(),
            &overrides.into(),
        ),
        Command::Fmt { check, files } => fmt::run(&files, check),
        Command::Codegen {
            file,
            network,
            out,
            overrides,
        } => report::codegen(&file, &network, out.as_deref(), &overrides.into()),
        Command::Export {
            file,
            network,
            format,
            out,
            weights,
            seed,
            opset,
            overrides,
            input_shape,
        } => {
            let mut ov: Overrides = overrides.into();
            if let Some(d) = input_shape {
                ov.input = Some(d.0);
            }
            export::run(
                &file,
                &network,
                format,
                export::Options {
                    out,
                    weights,
                    seed,
                    opset,
                },
                &ov,
            )
        }
        Command::Diff {
            a,
            b,
            file,
            overrides,
        } => diff::run(&a, &b, file.as_deref(), &overrides.into()),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "archc", &mut std::io::stdout());
            Ok(())
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map_err(|e| {
                    eprintln!("archc: cannot write the man page: {e}");
                    Failure::Usage
                })
        }
        Command::Layers { kind, format } => layers::run(kind.as_deref(), format),
        Command::Table {
            file,
            networks,
            overrides,
        } => report::table(&file, &networks, &overrides.into()),
        Command::Train(args) => train::run(*args),
        Command::Eval {
            file,
            network,
            weights,
            data,
            device,
            batch_size,
            per_class,
            ten_crop,
            scales,
            format,
            overrides,
        } => eval::run(
            &file,
            &network,
            &weights,
            &data,
            &device,
            eval::Options {
                batch_size,
                per_class,
                json: format == crate::cli::LayersFormat::Json,
                ten_crop,
                scales,
            },
            &overrides.into(),
        ),
        Command::Plot { runs, out } => plot::run(&runs, &out),
        Command::Forward {
            file,
            network,
            weights,
            input,
            output,
            device,
            classes,
            input_shape,
        } => forward::run(
            &file,
            &network,
            &weights,
            &input,
            &output,
            &device,
            &Overrides {
                input: input_shape.map(|d| d.0),
                classes,
            },
        ),
    }
}

/// The message of a command that needs the runtime crate in a build without it.
#[cfg(not(feature = "runtime"))]
pub fn needs_runtime(command: &str) -> Result<(), Failure> {
    eprintln!(
        "archc: `{command}` needs the runtime; this archc was built without it \
         (rebuild with the default features, or `--features runtime`)"
    );
    Err(Failure::Usage)
}

/// Compile `network` of `path` and lower it; diagnostics are printed.
#[cfg(feature = "runtime")]
pub fn lowered(
    path: &Path,
    network: &str,
    ov: &Overrides,
) -> Result<archc_compiler::lower::LoweredGraph, Failure> {
    let (sources, prog) = load(path)?;
    let names = select(&prog, &[network.to_string()], path)?;
    let (nets, diags) = archc_compiler::build_networks(&prog, &names, ov);
    if !diags.is_empty() {
        print_diagnostics(&diags, &sources);
        return Err(Failure::Input);
    }
    match nets.first() {
        Some(t) => Ok(archc_compiler::lower::lower(t)),
        None => Err(Failure::Usage),
    }
}

/// A network compiled again at other input sizes (`forward` at the input tensor's size,
/// `eval --scales`): only where every node keeps its parameter shapes, so the weights fit.
#[cfg(feature = "runtime")]
pub struct AtSize {
    sources: SourceSet,
    prog: Program,
    network: String,
    ov: Overrides,
    declared: archc_compiler::lower::LoweredGraph,
}

#[cfg(feature = "runtime")]
impl AtSize {
    /// For `network` of `path`, already compiled (`declared`) with the overrides `ov`.
    pub fn new(
        path: &Path,
        network: &str,
        ov: &Overrides,
        declared: archc_compiler::lower::LoweredGraph,
    ) -> Result<Self, Failure> {
        // The file compiled once already: its warnings have been printed.
        let (sources, r) = archc_compiler::load_path(path);
        let prog = r.map_err(|_| Failure::Input)?;
        Ok(AtSize {
            sources,
            prog,
            network: network.to_string(),
            ov: ov.clone(),
            declared,
        })
    }

    /// The network compiled at input `[C, H, W]`, or why it cannot be: the compile error at
    /// that size, or the first parameter whose shape would change.
    pub fn graph(&self, chw: [usize; 3]) -> Result<archc_compiler::lower::LoweredGraph, String> {
        let at = Overrides {
            input: Some(chw.iter().map(|&d| d as u64).collect()),
            classes: self.ov.classes,
        };
        let names = [self.network.clone()];
        let (nets, diags) = archc_compiler::build_networks(&self.prog, &names, &at);
        if !diags.is_empty() {
            let text = diags.render_plain(&self.sources);
            let first = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("it does not compile")
                .trim_start_matches(|c: char| !c.is_alphanumeric() && c != '`');
            return Err(first.to_string());
        }
        let typed = nets
            .first()
            .ok_or_else(|| format!("no network `{}`", self.network))?;
        let graph = archc_compiler::lower::lower(typed);
        if self.declared.nodes.len() != graph.nodes.len() {
            return Err("its layers change".to_string());
        }
        for (old, new) in self.declared.nodes.iter().zip(&graph.nodes) {
            for ((slot, a), (_, b)) in old.op.param_shapes().iter().zip(new.op.param_shapes()) {
                if *a != b {
                    return Err(format!(
                        "`{}.{slot}` would be {b:?}, not {a:?} (only a network whose \
                         parameters do not depend on the input's size, such as one with global \
                         pooling before its classifier, runs at another size)",
                        old.name
                    ));
                }
            }
        }
        Ok(graph)
    }
}

/// Parse a `--device` name, or say why not.
#[cfg(feature = "runtime")]
pub fn device(name: &str) -> Result<archc_runtime::Device, Failure> {
    // Every command that runs a network comes here first: keep freed buffers between steps.
    archc_runtime::malloc::keep_freed_memory();
    archc_runtime::parse_device(name).map_err(|e| {
        eprintln!("archc: {e}");
        Failure::Usage
    })
}

impl From<OverrideArgs> for Overrides {
    fn from(a: OverrideArgs) -> Self {
        Overrides {
            input: a.input.map(|d| d.0),
            classes: a.classes,
        }
    }
}

/// Print diagnostics to stderr: colours on a terminal (unless NO_COLOR), plain otherwise.
pub fn print_diagnostics(d: &Diagnostics, sources: &SourceSet) {
    print_reports(d, sources, "error");
}

/// Warnings (such as an unused block parameter) on stderr; they do not change the exit code.
pub fn print_warnings(d: &Diagnostics, sources: &SourceSet) {
    print_reports(d, sources, "warning");
}

fn print_reports(d: &Diagnostics, sources: &SourceSet, kind: &str) {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let theme = if colour {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    let handler = miette::GraphicalReportHandler::new_themed(theme);
    let mut out = String::new();
    for r in d.reports(sources) {
        let _ = handler.render_report(&mut out, r.as_ref());
        out.push('\n');
    }
    let n = d.len();
    out.push_str(&format!(
        "archc: {n} {kind}{} found\n",
        if n == 1 { "" } else { "s" }
    ));
    eprint!("{out}");
}

/// Load a file or report why not.
pub fn load(path: &Path) -> Result<(SourceSet, Program), Failure> {
    let (sources, r) = archc_compiler::load_path(path);
    match r {
        Ok(p) => {
            let warnings = archc_compiler::unused::unused_parameters(&p);
            if !warnings.is_empty() {
                print_warnings(&warnings, &sources);
            }
            Ok((sources, p))
        }
        Err(LoadError::Io(e)) => {
            eprintln!("archc: cannot read `{}`: {e}", path.display());
            Err(Failure::Usage)
        }
        Err(LoadError::Diagnostics(d)) => {
            print_diagnostics(&d, &sources);
            Err(Failure::Input)
        }
    }
}

/// The networks named on the command line, or all of the root file's; unknown names are usage errors.
pub fn select(prog: &Program, names: &[String], path: &Path) -> Result<Vec<String>, Failure> {
    if names.is_empty() {
        if prog.root_networks.is_empty() {
            eprintln!("archc: `{}` defines no networks", path.display());
            return Err(Failure::Usage);
        }
        return Ok(prog.root_networks.clone());
    }
    let mut out = Vec::new();
    for n in names {
        if prog.networks.contains_key(n) {
            out.push(n.clone());
        } else {
            let mut known: Vec<&str> = prog.networks.keys().map(String::as_str).collect();
            known.sort();
            eprintln!(
                "archc: no network `{n}` in `{}`; it defines: {}",
                path.display(),
                known.join(", ")
            );
            return Err(Failure::Usage);
        }
    }
    Ok(out)
}
