//! `archc plot RUN_DIR... --out FILE`: training (dashed) and test (bold) error of several runs.

use std::path::{Path, PathBuf};

use super::Failure;

#[cfg(not(feature = "runtime"))]
pub fn run(_runs: &[PathBuf], _out: &Path) -> Result<(), Failure> {
    super::needs_runtime("plot")
}

#[cfg(feature = "runtime")]
pub fn run(runs: &[PathBuf], out: &Path) -> Result<(), Failure> {
    use archc_runtime::train::{metrics, plot};

    let mut all = Vec::new();
    for r in runs {
        let rows = metrics::read(r).map_err(|e| {
            eprintln!("archc: {e}");
            Failure::Input
        })?;
        let label = r
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| r.display().to_string());
        all.push((label, rows));
    }
    let series: Vec<plot::Series> = all
        .iter()
        .map(|(label, rows)| plot::Series { label, rows })
        .collect();
    let files = plot::plot(&series, out).map_err(|e| {
        eprintln!("archc: {e}");
        Failure::Input
    })?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}
