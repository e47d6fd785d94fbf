//! Command-line definitions (clap). Completions and the man page are generated from these.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "archc",
    version,
    about = "Compile .arch network descriptions: check shapes, count parameters and FLOPs, report",
    long_about = None
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check files for errors; print every error of every file.
    Check {
        /// .arch files to check
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Report shapes, parameters, buffers, mult-adds, FLOPs and activation memory.
    Report {
        file: PathBuf,
        /// Networks to report (comma-separated or repeated); all networks of the file by default
        #[arg(long, short = 'n', value_delimiter = ',')]
        network: Vec<String>,
        #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
        format: Format,
        /// One row per layer instead of per stage
        #[arg(long)]
        per_layer: bool,
        /// Batch size for the activation memory figure
        #[arg(long, default_value_t = 1)]
        batch_size: u64,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Lower a network to the graph of Burn modules the runtime builds.
    Lower {
        file: PathBuf,
        /// The network to lower
        #[arg(long, short = 'n')]
        network: String,
        #[arg(long, short = 'f', value_enum, default_value_t = LowerFormat::Text)]
        format: LowerFormat,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Rewrite files in the canonical layout (comments kept).
    Fmt {
        /// Only check: list the files that are not formatted and exit 1 if any
        #[arg(long)]
        check: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Compare two networks per stage and in total, marking what differs.
    Diff {
        /// The first network, as FILE:NETWORK (or NETWORK with --file)
        a: String,
        /// The second network, as FILE:NETWORK (or NETWORK with --file)
        b: String,
        /// The file both networks come from, when A and B are bare network names
        #[arg(long)]
        file: Option<PathBuf>,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff).
    Man,
    /// Print the paper's Table 1 layout for several networks side by side.
    Table {
        file: PathBuf,
        /// Networks, in column order (comma-separated); all networks of the file by default
        #[arg(long, value_delimiter = ',')]
        networks: Vec<String>,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct OverrideArgs {
    /// Override the input shape, as CxHxW (e.g. 3x32x32)
    #[arg(long, value_parser = parse_dims)]
    pub input: Option<Dims>,
    /// Override the class count (networks that declare `classes`)
    #[arg(long)]
    pub classes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LowerFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Markdown,
}

/// A shape given on the command line, such as `3x32x32`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dims(pub Vec<u64>);

fn parse_dims(s: &str) -> Result<Dims, String> {
    let dims: Result<Vec<u64>, _> = s
        .split(['x', 'X'])
        .map(|p| p.trim().parse::<u64>())
        .collect();
    match dims {
        Ok(d) if (d.len() == 3 || d.len() == 1) && d.iter().all(|&x| x > 0) => Ok(Dims(d)),
        _ => Err(format!(
            "`{s}` is not a shape: write CxHxW with positive sizes, such as 3x32x32"
        )),
    }
}
