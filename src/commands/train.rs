//! `archc train`: the paper's recipe on a data set, into a run folder.

use crate::cli::TrainArgs;

use super::Failure;

#[cfg(not(feature = "runtime"))]
pub fn run(_args: TrainArgs) -> Result<(), Failure> {
    super::needs_runtime("train")
}

#[cfg(feature = "runtime")]
pub fn run(a: TrainArgs) -> Result<(), Failure> {
    use archc_runtime::train::{self, Outcome, ProgressMode, Recipe, Warmup};

    use crate::cli::{ProgressArg, RecipeArg};

    let usage = |m: String| {
        eprintln!("archc: {m}");
        Failure::Usage
    };
    // `--devices a,b,...`: data-parallel over the list (the first is the main device); one
    // name is the same as `--device`.
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
    let flags = train::Flags {
        file: a.file.display().to_string(),
        network: a.network.clone(),
        data: a.data.clone(),
        input_override: a.input.clone().map(|d| d.0),
        classes_override: a.classes,
        device: device_name.clone(),
        devices: parallel.clone(),
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
        augment: a.no_augment.then_some(false),
        log_every: a.log_every,
        eval_every: a.eval_every,
        seed: a.seed,
    };
    let plan = train::plan(&flags, &a.out, a.resume).map_err(|e| usage(e.to_string()))?;
    // The devices are opened as a real run opens them, before a dry run returns.
    let device = super::device(&device_name)?;
    let devices = if parallel.is_empty() {
        Vec::new()
    } else {
        archc_runtime::parse_devices(&parallel).map_err(|e| usage(e.to_string()))?
    };
    let config = plan.config.clone();
    let ov = archc_compiler::Overrides {
        input: config.input_override.clone(),
        classes: config.classes_override,
    };
    let graph = super::lowered(&a.file, &a.network, &ov)?;
    let for_dry_run = a.dry_run.then(|| config.clone());
    let prepared = plan.prepare(&graph).map_err(|e| match (e, for_dry_run) {
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
        for w in prepared.config.train.warnings() {
            eprintln!("warning: {w}");
        }
        return Ok(());
    }
    // A second Ctrl-C does not wait for the step to finish.
    let interrupt = train::interrupt_flag(|| std::process::exit(130)).map_err(usage)?;
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
    // Quiet: nothing on success (an interrupted run still says where it stopped).
    if a.progress == ProgressArg::Quiet && summary.outcome == Outcome::Finished {
        return Ok(());
    }
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
