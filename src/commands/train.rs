//! `archc train`: the paper's recipe on a data set, into a run folder.

use crate::cli::TrainArgs;

use super::Failure;

#[cfg(not(feature = "runtime"))]
pub fn run(_args: TrainArgs) -> Result<(), Failure> {
    super::needs_runtime("train")
}

#[cfg(feature = "runtime")]
pub fn run(a: TrainArgs) -> Result<(), Failure> {
    use archc_runtime::train::{self, Outcome, ProgressMode, Recipe, RunConfig, Warmup};

    use crate::cli::{ProgressArg, RecipeArg};

    let usage = |m: String| {
        eprintln!("archc: {m}");
        Failure::Usage
    };
    // `--devices a,b,...`: data-parallel over the list (the first is the main device); one
    // name is the same as `--device`. Names and kinds are checked here, before a dry run; the
    // devices are opened after it, as `--device` is.
    let devices: Vec<String> = a.devices.clone().unwrap_or_default();
    if a.devices.is_some() {
        archc_runtime::check_devices(&devices).map_err(|e| usage(e.to_string()))?;
    }
    let device_name = devices.first().cloned().unwrap_or_else(|| a.device.clone());
    let parallel: Vec<String> = if devices.len() > 1 {
        devices.clone()
    } else {
        Vec::new()
    };
    let overrides = archc_compiler::Overrides {
        input: a.overrides.input.clone().map(|d| d.0),
        classes: a.overrides.classes,
    };
    let config = if a.resume {
        let saved = train::read_config(&a.out).map_err(|e| usage(e.to_string()))?;
        let changed: Vec<&str> = [
            ("--batch-size", a.batch_size.is_some()),
            ("--lr", a.lr.is_some()),
            ("--milestones", a.milestones.is_some()),
            ("--weight-decay", a.weight_decay.is_some()),
            ("--momentum", a.momentum.is_some()),
            ("--warmup", a.warmup.is_some()),
            ("--val-fraction", a.val_fraction.is_some()),
            ("--no-augment", a.no_augment),
            ("--log-every", a.log_every.is_some()),
            ("--eval-every", a.eval_every.is_some()),
            ("--seed", a.seed.is_some()),
        ]
        .iter()
        .filter(|(_, given)| *given)
        .map(|(n, _)| *n)
        .collect();
        if !changed.is_empty() {
            return Err(usage(format!(
                "a resumed run keeps its configuration ({}); only --iterations, --epochs and \
                 --device/--devices may change: drop {}",
                a.out.join("config.json").display(),
                changed.join(", ")
            )));
        }
        if saved.network != a.network || saved.data != a.data_spec_string() {
            return Err(usage(format!(
                "`{}` trained `{}` on `{}`; resume it with the same --network and --data",
                a.out.display(),
                saved.network,
                saved.data
            )));
        }
        let mut c = saved;
        if let Some(i) = a.iterations {
            c.train.iterations = i;
            c.train.epochs = None;
        }
        if let Some(e) = a.epochs {
            c.train.epochs = Some(e);
        }
        c.device = device_name.clone();
        c.devices = parallel.clone();
        c
    } else {
        let recipe = match a.recipe {
            RecipeArg::PaperCifar => Recipe::PaperCifar,
            RecipeArg::PaperImagenet => Recipe::PaperImagenet,
        };
        let mut t = recipe.config();
        if let Some(i) = a.iterations {
            t.iterations = i;
        }
        t.epochs = a.epochs;
        if let Some(v) = a.batch_size {
            t.batch_size = v;
        }
        if let Some(v) = a.lr {
            t.lr = v;
        }
        if let Some(v) = &a.milestones {
            t.milestones = v.clone();
        }
        if let Some(v) = a.weight_decay {
            t.weight_decay = v;
        }
        if let Some(v) = a.momentum {
            t.momentum = v;
        }
        if let Some(w) = &a.warmup {
            t.warmup = Some(Warmup::parse(w).map_err(usage)?);
        }
        if let Some(v) = a.val_fraction {
            t.val_fraction = v;
        }
        t.augment = !a.no_augment;
        if let Some(v) = a.log_every {
            t.log_every = v;
        }
        if let Some(v) = a.eval_every {
            t.eval_every = v;
        }
        if let Some(v) = a.seed {
            t.seed = v;
        }
        RunConfig {
            archc_version: env!("CARGO_PKG_VERSION").to_string(),
            file: a.file.display().to_string(),
            network: a.network.clone(),
            input_override: overrides.input.clone(),
            classes_override: overrides.classes,
            input: Vec::new(),
            classes: 0,
            params: 0,
            data: a.data_spec_string(),
            device: device_name.clone(),
            devices: parallel.clone(),
            train: t,
        }
    };
    if a.resume
        && ((overrides.input.is_some() && overrides.input != config.input_override)
            || (overrides.classes.is_some() && overrides.classes != config.classes_override))
    {
        return Err(usage(
            "a resumed run rebuilds its network with the --input/--classes it was trained with"
                .to_string(),
        ));
    }
    let ov = archc_compiler::Overrides {
        input: config.input_override.clone(),
        classes: config.classes_override,
    };
    let graph = super::lowered(&a.file, &a.network, &ov)?;
    let for_dry_run = a.dry_run.then(|| config.clone());
    let prepared = train::prepare(&graph, config).map_err(|e| match (e, for_dry_run) {
        // A dry run shows the configuration even where the data are not there (yet).
        (train::TrainError::Data(e), Some(mut c)) => {
            if let Ok(x) = train::expect_of(&graph) {
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
        (e, _) => match e {
            train::TrainError::Config(m) => usage(m),
            e => {
                eprintln!("archc: {e}");
                Failure::Input
            }
        },
    })?;
    if a.dry_run {
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
        return Ok(());
    }
    let device = super::device(&device_name)?;
    let devices = if parallel.is_empty() {
        Vec::new()
    } else {
        archc_runtime::parse_devices(&parallel).map_err(|e| usage(e.to_string()))?
    };
    let interrupt = train::interrupt_flag().map_err(usage)?;
    let progress = match a.progress {
        ProgressArg::Auto => ProgressMode::Auto,
        ProgressArg::Bar => ProgressMode::Bar,
        ProgressArg::Lines => ProgressMode::Lines,
        ProgressArg::Quiet => ProgressMode::Quiet,
    };
    let summary = train::train(train::Run {
        graph: &graph,
        prepared,
        out: a.out.clone(),
        device,
        devices,
        resume: a.resume,
        progress,
        interrupt: Some(interrupt),
        pause_after: None,
    })
    .map_err(|e| {
        eprintln!("archc: {e}");
        match e {
            train::TrainError::Config(_) => Failure::Usage,
            _ => Failure::Input,
        }
    })?;
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |e| format!("{:.2}%", e * 100.0));
    let last = summary.last.unwrap_or_default();
    eprintln!(
        "{} at iteration {}: train error {}, validation error {}, test error {}{}; run folder {}",
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
    );
    match summary.outcome {
        Outcome::Finished => Ok(()),
        Outcome::Interrupted => Err(Failure::Interrupted),
    }
}

#[cfg(feature = "runtime")]
impl TrainArgs {
    /// The data spec in its canonical spelling (`synthetic` → `synthetic:5000`).
    fn data_spec_string(&self) -> String {
        self.data
            .parse::<archc_runtime::data::DataSpec>()
            .map(|s| s.to_string())
            .unwrap_or_else(|_| self.data.clone())
    }
}
