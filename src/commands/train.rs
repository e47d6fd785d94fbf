//! `archc train`: the paper's recipe on a data set, into a run folder.
//!
//! The steps: the flags given (`flags`), the run they resolve to (`train::plan`: a new run,
//! or a resumed one checked against its `config.json`), the devices opened, the network
//! compiled, the data opened (`prepare`), then either the dry run's printout (`dry_run`) or
//! the run itself and its closing line (`summary_line`). Launched as one of several processes
//! (torchrun, srun: `group`), it first joins their process group; only rank 0 prints.

#[cfg(not(feature = "runtime"))]
pub fn run(_args: crate::cli::TrainArgs) -> Result<(), super::Failure> {
    super::needs_runtime("train")
}

#[cfg(feature = "runtime")]
pub use imp::run;

#[cfg(feature = "runtime")]
mod imp {
    use archc_compiler::lower::LoweredGraph;
    use archc_runtime::train::{
        self, AugmentKind, Flags, LrScale, OptimizerKind, Outcome, Plan, Prepared, ProgressMode,
        Recipe, Summary, TrainError, Warmup,
    };

    use crate::cli::{
        AugmentArg, MemoryFormatArg, OptimizerArg, ProgressArg, RecipeArg, TrainArgs,
        TrainPrecisionArg,
    };
    use crate::commands::Failure;
    use archc_runtime::precision::{MemoryFormat, Precision};

    fn usage(m: String) -> Failure {
        eprintln!("archc: {m}");
        Failure::Usage
    }

    /// A configuration the user got wrong is a usage error (2); data, weights or an output
    /// folder at fault an input error (1).
    fn failure(e: TrainError) -> Failure {
        match e {
            TrainError::Config(m) => usage(m),
            e => {
                eprintln!("archc: {e}");
                Failure::Input
            }
        }
    }

    pub fn run(a: TrainArgs) -> Result<(), Failure> {
        let flags = flags(&a)?;
        let launch = launch(&flags)?;
        let plan = train::plan(&flags, &a.out, a.resume).map_err(failure)?;
        // The devices are opened as a real run opens them, before a dry run returns.
        let device = crate::commands::device(&flags.device)?;
        if (flags.precision, flags.memory_format) != (Precision::F32, MemoryFormat::Contiguous)
            && !archc_runtime::device::is_libtorch(&device)
        {
            return Err(usage(format!(
                "--precision and --memory-format need LibTorch (--device libtorch-cpu or cuda:N, \
                 archc built with --features tch); `{}` trains in f32, contiguous",
                flags.device
            )));
        }
        let devices = if flags.devices.is_empty() {
            Vec::new()
        } else {
            archc_runtime::parse_devices(&flags.devices).map_err(|e| usage(e.to_string()))?
        };
        let ov = archc_compiler::Overrides {
            input: plan.config.input_override.clone(),
            classes: plan.config.classes_override,
        };
        let graph = crate::commands::lowered(&a.file, &a.network, &ov)?;
        let prepared = prepare(plan, &graph, a.dry_run)?;
        if a.dry_run {
            return dry_run(&prepared);
        }
        let group = match launch {
            Some(l) => Some(join(&a, &l, prepared.config.train.batch_size)?),
            None => None,
        };
        let writer = group.as_ref().is_none_or(|g| g.rank == 0);
        // A second Ctrl-C does not wait for the step to finish.
        let interrupt = train::interrupt_flag(|| std::process::exit(130)).map_err(usage)?;
        let summary = train::train(train::Run {
            graph: &graph,
            prepared,
            out: a.out.clone(),
            device,
            devices,
            resume: a.resume,
            progress: match a.progress {
                ProgressArg::Auto => ProgressMode::Auto,
                ProgressArg::Bar => ProgressMode::Bar,
                ProgressArg::Lines => ProgressMode::Lines,
                ProgressArg::Quiet => ProgressMode::Quiet,
            },
            interrupt: Some(interrupt),
            pause_after: None,
            group,
        })
        .map_err(failure)?;
        // Quiet: nothing on success (an interrupted run still says where it stopped).
        let quiet = a.progress == ProgressArg::Quiet && summary.outcome == Outcome::Finished;
        if writer && !quiet {
            eprintln!("{}", summary_line(&summary, &a));
        }
        match summary.outcome {
            Outcome::Finished => Ok(()),
            Outcome::Interrupted => Err(Failure::Interrupted),
        }
    }

    /// The launch when a launcher started several processes (`torchrun`, `srun`), or `None`
    /// for one process: read from the environment before any device is opened. A launch that
    /// cannot work is a usage error (exit 2).
    fn launch(flags: &Flags) -> Result<Option<train::dist::Launch>, Failure> {
        let Some(launch) = train::dist::Launch::from_env().map_err(usage)? else {
            return Ok(None);
        };
        if !flags.devices.is_empty() {
            return Err(usage(format!(
                "--devices cannot be combined with {} (one process per device: give each \
                 process --device)",
                launch.launcher
            )));
        }
        if flags.device.starts_with("cuda") {
            return Err(usage(format!(
                "--device {} under {}: training over several processes on GPUs needs c10d's \
                 NCCL backend, which this archc is not built with; it runs on --device \
                 libtorch-cpu (Gloo) or cpu. On one machine, --devices cuda:0,cuda:1,... \
                 trains on several GPUs in one process (docs/training.md)",
                flags.device, launch.launcher
            )));
        }
        Ok(Some(launch))
    }

    /// Join the process group of `launch`. A batch that does not split over the processes is
    /// a usage error, said by every process before any joins (none waits for one that left);
    /// a group that cannot be joined (a peer never came, within --dist-timeout) an error
    /// (exit 1).
    fn join(
        a: &TrainArgs,
        launch: &train::dist::Launch,
        batch_size: usize,
    ) -> Result<train::dist::Group, Failure> {
        if !batch_size.is_multiple_of(launch.world) {
            return Err(usage(format!(
                "the batch size {batch_size} is not a multiple of the {} processes",
                launch.world
            )));
        }
        let timeout = std::time::Duration::from_secs_f64(a.dist_timeout);
        train::dist::Group::join(launch, timeout).map_err(|e| {
            eprintln!(
                "archc: distributed training: rank {} of {}: joining the process group at {}:{} \
                 failed (--dist-timeout {} s): {}",
                launch.rank,
                launch.world,
                launch.master_addr,
                launch.master_port,
                a.dist_timeout,
                e.lines().next().unwrap_or("")
            );
            Failure::Input
        })
    }

    /// The flags as given (`None` where not given). `--devices a,b,...`: data-parallel over
    /// the list (the first is the main device); one name is the same as `--device`.
    fn flags(a: &TrainArgs) -> Result<Flags, Failure> {
        let list: Vec<String> = a.devices.clone().unwrap_or_default();
        if a.devices.is_some() {
            archc_runtime::check_devices(&list).map_err(|e| usage(e.to_string()))?;
        }
        Ok(Flags {
            file: a.file.display().to_string(),
            network: a.network.clone(),
            data: a.data.clone(),
            input_override: a.input.clone().map(|d| d.0),
            classes_override: a.classes,
            precision: match a.precision {
                TrainPrecisionArg::F32 => Precision::F32,
                TrainPrecisionArg::Bf16 => Precision::Bf16,
                TrainPrecisionArg::F16 => Precision::F16,
            },
            memory_format: match a.memory_format {
                MemoryFormatArg::Contiguous => MemoryFormat::Contiguous,
                MemoryFormatArg::ChannelsLast => MemoryFormat::ChannelsLast,
            },
            device: list.first().cloned().unwrap_or_else(|| a.device.clone()),
            devices: if list.len() > 1 { list } else { Vec::new() },
            recipe: a.recipe.map(|r| match r {
                RecipeArg::PaperCifar => Recipe::PaperCifar,
                RecipeArg::PaperImagenet => Recipe::PaperImagenet,
            }),
            iterations: a.iterations,
            epochs: a.epochs,
            batch_size: a.batch_size,
            lr: a.lr,
            milestones: a.milestones.clone(),
            weight_decay: a.weight_decay,
            momentum: a.momentum,
            warmup: a
                .warmup
                .as_deref()
                .map(Warmup::parse)
                .transpose()
                .map_err(usage)?,
            val_fraction: a.val_fraction,
            augment: match (a.augment, a.no_augment) {
                (Some(AugmentArg::Cifar), _) => Some(AugmentKind::Cifar),
                (Some(AugmentArg::Imagenet), _) => Some(AugmentKind::Imagenet),
                (Some(AugmentArg::None), _) | (None, true) => Some(AugmentKind::None),
                (None, false) => None,
            },
            flip: a.no_flip.then_some(false),
            lighting: a.lighting,
            log_every: a.log_every,
            eval_every: a.eval_every,
            seed: a.seed,
            optimizer: a.optimizer.map(|o| match o {
                OptimizerArg::Sgd => OptimizerKind::Sgd,
                OptimizerArg::Adamw => OptimizerKind::AdamW,
            }),
            betas: match a.betas.as_deref() {
                None => None,
                Some(&[b1, b2]) => Some((b1, b2)),
                Some(_) => {
                    return Err(usage(
                        "--betas takes two numbers, B1,B2, such as 0.9,0.999".to_string(),
                    ))
                }
            },
            eps: a.eps,
            freeze: a.freeze.clone(),
            lr_scale: a
                .lr_scale
                .as_ref()
                .map(|v| v.iter().map(|s| LrScale::parse(s)).collect())
                .transpose()
                .map_err(usage)?,
            init: a.init.as_ref().map(|p| p.display().to_string()),
            init_partial: a.init_partial,
        })
    }

    /// Open the data. A dry run whose data are not there (yet) still prints the
    /// configuration, then says why the data were not opened (exit 1).
    fn prepare(plan: Plan, graph: &LoweredGraph, dry_run: bool) -> Result<Prepared, Failure> {
        let for_dry_run = dry_run.then(|| plan.config.clone());
        plan.prepare(graph).map_err(|e| match (e, for_dry_run) {
            (TrainError::Data(e), Some(mut c)) => {
                if let Ok(x) = train::expect_of(graph) {
                    c.input = x.input.to_vec();
                    c.classes = x.classes;
                }
                c.params = graph.params;
                if let Ok(json) = serde_json::to_string_pretty(&c) {
                    println!("{json}");
                }
                eprintln!("archc: the data were not opened: {e}");
                Failure::Input
            }
            (e, _) => failure(e),
        })
    }

    /// The dry run's printout: the resolved configuration and the splits (stdout), the
    /// warnings (stderr).
    fn dry_run(prepared: &Prepared) -> Result<(), Failure> {
        let json =
            serde_json::to_string_pretty(&prepared.config).map_err(|e| usage(e.to_string()))?;
        println!("{json}");
        println!("train: {}", prepared.train.name());
        if let Some(v) = &prepared.val {
            println!("validation: {}", v.name());
        }
        if let Some(t) = &prepared.test {
            println!("test: {}", t.name());
        }
        for w in prepared.config.train.warnings() {
            eprintln!("warning: {w}");
        }
        Ok(())
    }

    /// The closing line: how the run ended, its last errors and the best one.
    fn summary_line(summary: &Summary, a: &TrainArgs) -> String {
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |e| format!("{:.2}%", e * 100.0));
        let last = summary.last.clone().unwrap_or_default();
        format!(
            "{} at iteration {}: train error {}, validation error {}, test error {}{}; run \
             folder {}",
            match summary.outcome {
                Outcome::Finished => "finished",
                Outcome::Interrupted => "interrupted",
            },
            summary.iteration,
            pct(last.train_error),
            pct(last.val_error),
            pct(last.test_error),
            summary
                .best
                .map(|(e, i)| format!(" (best {:.2}% at {i})", e * 100.0))
                .unwrap_or_default(),
            a.out.display()
        )
    }
}
