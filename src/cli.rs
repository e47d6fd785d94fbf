//! Command-line definitions (clap). Completions and the man page are generated from these.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Every `--data` kind (train and eval say the same; tests/layers.rs checks both helps).
pub const DATA_HELP: &str = "The data: cifar10:DIR, cifar100:DIR, mnist:DIR (IDX files, plain or .gz), folder:DIR (one sub-folder per class), synthetic[:N] or textures[:N] (seeded, no download)";

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
    /// Report shapes, parameters, buffers, mult-adds, FLOPs and activation memory; with
    /// --training, the cost of a training step.
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
        /// Batch size for the activation memory figure; with --training, several
        /// (comma-separated, such as 1,32,256) give one column each
        #[arg(long, value_delimiter = ',', default_value = "1", value_parser = batch_size)]
        batch_size: Vec<u64>,
        #[command(flatten)]
        training: TrainingArgs,
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
    /// Draw a network as the paper's Figure 3 does: layers in order, shortcuts beside, branches side by side.
    Graph {
        file: PathBuf,
        /// The network to draw
        #[arg(long, short = 'n')]
        network: String,
        #[arg(long, short = 'f', value_enum, default_value_t = GraphFormat::Svg)]
        format: GraphFormat,
        /// Draw every repetition of a repeated block (identical ones are collapsed by default)
        #[arg(long)]
        expand: bool,
        /// Where to write the picture (stdout if absent)
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
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
    /// Write a standalone Rust source file defining the network as a Burn module.
    Codegen {
        file: PathBuf,
        /// The network to generate
        #[arg(long, short = 'n')]
        network: String,
        /// Where to write the source (stdout if absent)
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Export a network for another framework: a PyTorch module (`--format pytorch`) or an
    /// ONNX model with its weights (`--format onnx`). See docs/export.md.
    Export {
        file: PathBuf,
        /// The network to export
        #[arg(long, short = 'n')]
        network: String,
        #[arg(long, short = 'f', value_enum)]
        format: ExportFormat,
        /// Where to write it (default: a PyTorch module to stdout, an ONNX model to
        /// NETWORK.onnx in the current folder)
        #[arg(long, short = 'o')]
        out: Option<PathBuf>,
        /// ONNX only: the weights written into the model, .safetensors or .pth (torchvision
        /// names) or a checkpoint folder (default: the runtime's seeded initialisation, --seed);
        /// a PyTorch module loads weights with load_state_dict
        #[arg(long)]
        weights: Option<PathBuf>,
        /// ONNX only: the seed of the initialisation when there are no --weights (default: 0)
        #[arg(long)]
        seed: Option<u64>,
        /// ONNX only: the opset (17 to 22; default 17)
        #[arg(long)]
        opset: Option<i64>,
        #[command(flatten)]
        overrides: OverrideArgs,
        /// The input shape as CxHxW, the same as --input (the ONNX model's input is
        /// [batch, C, H, W])
        #[arg(long = "input-shape", value_parser = parse_dims, conflicts_with = "input")]
        input_shape: Option<Dims>,
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
    /// List every layer kind with its arguments, defaults, shape rule and counting rule.
    Layers {
        /// One kind only (such as `conv` or `silu`)
        kind: Option<String>,
        #[arg(long, short = 'f', value_enum, default_value_t = LayersFormat::Text)]
        format: LayersFormat,
    },
    /// Print the paper's Table 1 layout for several networks side by side.
    Table {
        file: PathBuf,
        /// Networks, in column order (comma-separated); all networks of the file by default
        #[arg(long, value_delimiter = ',')]
        networks: Vec<String>,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Train a network with the paper's recipe (needs the `runtime` feature).
    Train(Box<TrainArgs>),
    /// Evaluate weights on a data set: top-1 (and top-5) error (needs the `runtime` feature).
    Eval {
        file: PathBuf,
        /// The network to build
        #[arg(long, short = 'n')]
        network: String,
        /// Weights: .safetensors or .pth, or a checkpoint folder (RUN/checkpoints/best)
        #[arg(long)]
        weights: PathBuf,
        #[arg(long, help = DATA_HELP)]
        data: String,
        /// cpu, or cuda:N with the `tch` feature
        #[arg(long, default_value = "cpu")]
        device: String,
        #[arg(long, default_value_t = 100)]
        batch_size: usize,
        /// Also each class's top-1 error and the confusion matrix (rows: label, columns:
        /// predicted class; the text shows the matrix up to 20 classes, JSON always)
        #[arg(long)]
        per_class: bool,
        /// 10-crop testing (AlexNet's, the paper's section 3.4): the four corner crops and the
        /// centre crop of the input's size and their mirror images, class probabilities
        /// averaged; from the image resized to the evaluation side (256 for a 224 input), or
        /// to each of --scales
        #[arg(long)]
        ten_crop: bool,
        /// Fully convolutional multi-scale testing: the whole image, its shorter side resized
        /// to each of these sizes (the paper: 224,256,384,480,640), through the network,
        /// class probabilities averaged (networks with global pooling before the classifier);
        /// with --ten-crop, the ten crops at each scale
        #[arg(long, value_delimiter = ',', value_name = "SIDES")]
        scales: Vec<usize>,
        /// text, or json (one object: network, data, images, top1_error, top5_error, loss,
        /// and with --per-class per_class and confusion)
        #[arg(long, short = 'f', value_enum, default_value_t = LayersFormat::Text)]
        format: LayersFormat,
        #[command(flatten)]
        overrides: OverrideArgs,
    },
    /// Plot training (dashed), test (bold) and validation (dotted) error and the training loss
    /// of one or more run folders.
    Plot {
        /// Run folders (each with metrics.jsonl)
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// The plot: FILE.svg, FILE.png, or FILE without extension for both
        #[arg(long, short = 'o')]
        out: PathBuf,
    },
    /// One eval-mode forward pass: safetensors `input` [N,C,H,W] in, `output` (logits) out.
    Forward {
        file: PathBuf,
        #[arg(long, short = 'n')]
        network: String,
        /// Weights: .safetensors or .pth (torchvision names), or a checkpoint folder
        /// (RUN/checkpoints/last). With a checkpoint (its mean.safetensors beside the weights)
        /// the checkpoint's input mean is subtracted from the input first, as training and
        /// eval do
        #[arg(long)]
        weights: PathBuf,
        /// A .safetensors file holding the f32 tensor `input` (for a checkpoint of `archc
        /// train`: pixels scaled to [0, 1], as training reads them; see --weights for the mean)
        #[arg(long)]
        input: PathBuf,
        /// Where to write the .safetensors file holding `output`
        #[arg(long)]
        output: PathBuf,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Override the class count (networks that declare `classes`)
        #[arg(long)]
        classes: Option<u64>,
        /// Override the network's input shape, as CxHxW (default: the input tensor's shape
        /// when the network's parameters allow it, as with global pooling; else the declared one)
        #[arg(long = "input-shape", value_parser = parse_dims)]
        input_shape: Option<Dims>,
    },
}

/// What `archc export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// An ONNX model (.onnx)
    Onnx,
    /// A PyTorch module
    Pytorch,
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
pub enum AugmentArg {
    Cifar,
    Imagenet,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrainPrecisionArg {
    F32,
    Bf16,
    F16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MemoryFormatArg {
    Contiguous,
    ChannelsLast,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayersFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LowerFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// Graphviz's DOT language
    Dot,
    /// A self-contained SVG picture
    Svg,
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

/// `--dist-timeout`: positive seconds, at most a day.
fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if t > 0.0 && t <= 86400.0 => Ok(t),
        _ => Err(format!(
            "`{s}` is not a timeout: give seconds, more than 0 and at most 86400"
        )),
    }
}

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

/// `archc train`'s arguments. Unset hyper-parameters come from the recipe.
#[derive(Debug, Clone, Args)]
pub struct TrainArgs {
    pub file: PathBuf,
    /// The network to train
    #[arg(long, short = 'n')]
    pub network: String,
    #[arg(long, help = DATA_HELP)]
    pub data: String,
    /// The run folder (config, metrics, checkpoints, plots)
    #[arg(long)]
    pub out: PathBuf,
    /// The hyper-parameters' defaults: the paper's CIFAR or ImageNet recipe (default:
    /// paper-cifar)
    #[arg(long, value_enum)]
    pub recipe: Option<RecipeArg>,
    /// Iterations (SGD steps) to run (default: the recipe's, paper-cifar 64000, paper-imagenet
    /// 600000)
    #[arg(long, conflicts_with = "epochs")]
    pub iterations: Option<u64>,
    /// Epochs to run, converted to iterations (default: none, the run is --iterations long)
    #[arg(long)]
    pub epochs: Option<u64>,
    /// The global batch size (default: the recipe's, paper-cifar 128, paper-imagenet 256)
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Base learning rate (default: 0.1)
    #[arg(long)]
    pub lr: Option<f64>,
    /// Iterations at which the learning rate is divided by 10, comma-separated (default:
    /// paper-cifar 32000,48000, paper-imagenet 150000,300000,450000); a milestone past the
    /// run is warned of
    #[arg(long, value_delimiter = ',')]
    pub milestones: Option<Vec<u64>>,
    /// L2 penalty added to the gradient (default: 0.0001)
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// SGD momentum (default: 0.9)
    #[arg(long)]
    pub momentum: Option<f64>,
    /// A constant learning rate for the first iterations, as ITERS:LR (ResNet-110: 400:0.01)
    /// (default: none)
    #[arg(long)]
    pub warmup: Option<String>,
    /// Fraction of the training split held out for validation (default: paper-cifar 0.1, the
    /// 45k/5k split, paper-imagenet 0)
    #[arg(long)]
    pub val_fraction: Option<f64>,
    /// The training augmentation: cifar (pad 4 pixels, random crop), imagenet (random
    /// shorter side in [256, 480] scaled by input/224, random crop) or none (default: cifar for
    /// inputs of at most 64 pixels a side; larger ones imagenet under paper-imagenet or on an
    /// image folder, else cifar). Recorded in config.json
    #[arg(long, value_enum, conflicts_with = "no_augment")]
    pub augment: Option<AugmentArg>,
    /// Turn the data augmentation off (the same as --augment none)
    #[arg(long)]
    pub no_augment: bool,
    /// Do not flip images horizontally in the augmentation (digits, text); recorded in
    /// config.json
    #[arg(long)]
    pub no_flip: bool,
    /// AlexNet's PCA lighting noise on 3-channel training images: each image's pixels shifted
    /// along the eigenvectors of ImageNet's RGB covariance by N(0, STD) times each eigenvalue
    /// (default: paper-imagenet 0.1, paper-cifar 0; 0 turns it off). Recorded in config.json
    #[arg(long, value_name = "STD")]
    pub lighting: Option<f64>,
    /// Iterations between metric rows (default: 100, but at most a tenth of the run)
    #[arg(long)]
    pub log_every: Option<u64>,
    /// Iterations between evaluations and checkpoints (default: paper-cifar 1000,
    /// paper-imagenet 5000, but at most a fifth of the run)
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// cpu, or cuda:N with the `tch` feature
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Data-parallel training on several devices of one kind, e.g. cuda:0,cuda:1 or cpu,cpu:
    /// each batch is split evenly (the batch size must be a multiple of their number), the
    /// gradients are summed on the first device (= the whole batch's mean gradient), and batch
    /// norm uses each device's share's statistics. See docs/training.md
    /// (default: none, one device: --device)
    #[arg(long, value_delimiter = ',', conflicts_with = "device")]
    pub devices: Option<Vec<String>>,
    /// Under torchrun or srun (several processes): how long a process waits for its peers, to
    /// connect, and at each collective (rank 0's evaluation and checkpoints included), before
    /// it stops with an error. See docs/training.md
    #[arg(long, value_name = "SECONDS", default_value_t = 1800.0, value_parser = parse_timeout)]
    pub dist_timeout: f64,
    /// Compute type of convolutions and linear layers in training, LibTorch only: bf16 or f16
    /// with f32 master weights (f16 with dynamic loss scaling); batch norm, the loss and the
    /// checkpoints stay f32. See docs/training.md (default: f32)
    #[arg(long, value_enum, default_value_t = TrainPrecisionArg::F32)]
    pub precision: TrainPrecisionArg,
    /// Memory layout of convolutions' inputs and weights in training, LibTorch only
    /// (default: contiguous, NCHW)
    #[arg(long, value_enum, default_value_t = MemoryFormatArg::Contiguous)]
    pub memory_format: MemoryFormatArg,
    /// Seed of the initialisation, the data order, the augmentation and the validation split
    /// (default: 0)
    #[arg(long)]
    pub seed: Option<u64>,
    /// Continue the run in --out from its last checkpoint
    #[arg(long)]
    pub resume: bool,
    /// Print the resolved configuration and exit, after checking the devices, the output
    /// folder and the data as a real run does
    #[arg(long)]
    pub dry_run: bool,
    /// Progress output: auto is a bar on a terminal, plain lines otherwise; quiet prints
    /// nothing on success but warnings
    #[arg(long, value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
    /// Override the input shape, as CxHxW, e.g. 3x32x32 (default: the network's own)
    #[arg(long, value_parser = parse_dims)]
    pub input: Option<Dims>,
    /// Override the class count of networks that declare `classes` (default: the network's
    /// own)
    #[arg(long)]
    pub classes: Option<u64>,
    /// Start from these weights: .safetensors or .pth with torchvision names, or an archc
    /// checkpoint folder (RUN/checkpoints/best). Every tensor whose name and shape match is
    /// loaded; a classifier of another shape (another --classes) is initialised afresh; the run
    /// says what was loaded, re-initialised and ignored. config.json records the path and its
    /// SHA-256 (default: none, archc's own initialisation)
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// With --init: also initialise afresh the tensors outside the classifier whose shape
    /// differs from the file's (refused without it)
    #[arg(long)]
    pub init_partial: bool,
    /// Layers not to train, as weight-name prefixes, comma-separated (stages or layers such as
    /// conv1,bn1,layer1): no update, batch norm in eval mode (default: none)
    #[arg(long, value_delimiter = ',')]
    pub freeze: Option<Vec<String>>,
    /// A learning-rate factor for the layers under a weight-name prefix, as PREFIX=F, such as
    /// layer4=0.1; repeatable, the longest matching prefix counts (default: 1 everywhere)
    #[arg(long)]
    pub lr_scale: Option<Vec<String>>,
    /// The optimizer: sgd (momentum, coupled weight decay: torch.optim.SGD) or adamw
    /// (decoupled weight decay: torch.optim.AdamW; --momentum is unused) (default: sgd)
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// AdamW's betas, as B1,B2 (default: 0.9,0.999, PyTorch's)
    #[arg(long, value_delimiter = ',', num_args = 1)]
    pub betas: Option<Vec<f64>>,
    /// AdamW's eps, added to the bias-corrected sqrt(v) (default: 1e-8, PyTorch's)
    #[arg(long)]
    pub eps: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    Sgd,
    Adamw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RecipeArg {
    PaperCifar,
    PaperImagenet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    Auto,
    Bar,
    Lines,
    Quiet,
}

/// `archc report --training`'s flags (docs/language.md, "Training cost").
#[derive(Debug, Clone, Args)]
pub struct TrainingArgs {
    /// Report a training step: forward and backward FLOPs, the bytes kept for the backward (as
    /// PyTorch eager keeps them), parameters, gradients, optimizer state and the peak memory
    #[arg(long)]
    pub training: bool,
    /// The optimizer whose state a step keeps (default: momentum, the paper's recipe)
    #[arg(long, value_enum, requires = "training")]
    pub optimizer: Option<StateOptimizerArg>,
    /// f32, bf16 (the whole model in bf16) or f16-mixed (autocast with f32 master weights)
    /// (default: f32)
    #[arg(long, value_enum, requires = "training")]
    pub precision: Option<PrecisionArg>,
    /// Print the largest batch size whose step fits this memory, such as 80GiB or 141GB
    #[arg(long, value_parser = parse_memory, requires = "training")]
    pub memory: Option<u128>,
    /// The accelerator's peak TFLOP/s at the chosen precision, for a roofline estimate of
    /// step and epoch time (with --bandwidth)
    #[arg(long, value_parser = parse_tflops, requires_all = ["training", "bandwidth"])]
    pub peak_tflops: Option<f64>,
    /// The accelerator's memory bandwidth, such as 3.35TB/s or 900GB/s (a bare number is
    /// GB/s), for the roofline estimate (with --peak-tflops)
    #[arg(long, value_parser = parse_bandwidth, requires_all = ["training", "peak_tflops"])]
    pub bandwidth: Option<f64>,
    /// Training images per epoch for the epoch estimate (default: 1281167, ImageNet-1k's
    /// training set, for inputs larger than 64x64; 50000, CIFAR's, otherwise)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..), requires = "peak_tflops")]
    pub dataset_size: Option<u64>,
}

/// The optimizer whose state `report --training` counts (adam and adamw keep the same two
/// moments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateOptimizerArg {
    Sgd,
    Momentum,
    #[value(alias = "adamw")]
    Adam,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionArg {
    F32,
    Bf16,
    F16Mixed,
}

/// A batch size: 1 to 2^32.
fn batch_size(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(b) if (1..=archc_compiler::training::MAX_BATCH).contains(&b) => Ok(b),
        _ => Err(format!(
            "`{s}` is not a batch size: write whole numbers from 1 to {}, such as 32 or 1,32,256",
            archc_compiler::training::MAX_BATCH
        )),
    }
}

/// A number and its unit, split where the unit starts: `80GiB` → (80.0, "gib").
fn number_and_unit(s: &str) -> Option<(f64, String)> {
    let s = s.trim();
    let at = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E'))
        .unwrap_or(s.len());
    // `e` belongs to the number only when digits follow it (1e9), never to a unit.
    let (num, unit) = s.split_at(at);
    let x: f64 = num.parse().ok()?;
    (x.is_finite() && x > 0.0).then(|| (x, unit.trim().to_ascii_lowercase()))
}

fn unit_scale(unit: &str) -> Option<f64> {
    Some(match unit {
        "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        _ => return None,
    })
}

/// A memory size with its unit: `80GiB`, `141GB`, `24576MiB`.
fn parse_memory(s: &str) -> Result<u128, String> {
    let bad = || {
        format!(
            "`{s}` is not a memory size: write a positive number and a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), such as 80GiB"
        )
    };
    let (x, unit) = number_and_unit(s).ok_or_else(bad)?;
    if unit.is_empty() {
        return Err(format!(
            "`{s}` needs a unit: such as {s}GiB (2^30 bytes each) or {s}GB (10^9 bytes each)"
        ));
    }
    let bytes = x * unit_scale(&unit).ok_or_else(bad)?;
    if !(1.0..=1e30).contains(&bytes) {
        return Err(format!(
            "`{s}` is out of range: a memory from 1 byte to 10^30 bytes"
        ));
    }
    Ok(bytes.floor() as u128)
}

/// A bandwidth in bytes per second: `3.35TB/s`, `900GB/s`, or a bare number of GB/s.
fn parse_bandwidth(s: &str) -> Result<f64, String> {
    let bad = || {
        format!(
            "`{s}` is not a bandwidth: write a positive number of GB/s, or a number and a unit (MB/s, GB/s, TB/s, GiB/s, TiB/s), such as 3.35TB/s"
        )
    };
    let (x, unit) = number_and_unit(s).ok_or_else(bad)?;
    let scale = match unit.as_str() {
        "" => 1e9,
        u => unit_scale(u.strip_suffix("/s").ok_or_else(bad)?).ok_or_else(bad)?,
    };
    let b = x * scale;
    if !(1.0..=1e18).contains(&b) {
        return Err(format!(
            "`{s}` is out of range: a bandwidth from 1 byte/s to 10^18 bytes/s"
        ));
    }
    Ok(b)
}

/// A peak throughput in TFLOP/s: a positive number.
fn parse_tflops(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 && x <= 1e9 => Ok(x),
        _ => Err(format!(
            "`{s}` is not a peak throughput: write a positive number of TFLOP/s, such as 989 (an H100's dense bf16)"
        )),
    }
}
