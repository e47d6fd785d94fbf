//! parse → resolve → expand → infer → analyse → JSON, for every zoo file (every `.arch` in
//! architectures/, found when the bench starts, so a new file is benchmarked without editing
//! this list), for resnet152 and for the deepest network (cifar_resnet1202).
//! `cargo bench --bench compile`; medians go in docs/benchmarks.md.

use std::path::{Path, PathBuf};

use archc_compiler::analysis::analyse;
use archc_compiler::{build_network, load_path, report, Overrides};

fn main() {
    divan::main();
}

fn zoo(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("architectures")
        .join(file)
}

/// Everything `archc report --format json` does for a whole file, minus printing.
fn report_file(path: &Path, only: Option<&str>) -> usize {
    let (_, prog) = load_path(path);
    let prog = prog.expect("zoo files compile");
    let names: Vec<String> = match only {
        Some(n) => vec![n.to_string()],
        None => prog.root_networks.clone(),
    };
    let reports: Vec<_> = names
        .iter()
        .map(|n| {
            analyse(
                &build_network(&prog, n, &Overrides::default()).expect("zoo networks build"),
                1,
            )
        })
        .collect();
    report::json(&reports).len()
}

/// Every `.arch` file in architectures/, by name. A library of blocks with no network
/// (blocks.arch) is parsed and resolved only.
fn zoo_files() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("architectures");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("architectures/ is readable")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".arch"))
        .collect();
    files.sort();
    files
}

#[divan::bench(args = zoo_files())]
fn report_zoo_file(file: &str) -> usize {
    report_file(&zoo(file), None)
}

#[divan::bench]
fn report_resnet152() -> usize {
    report_file(&zoo("resnet.arch"), Some("resnet152"))
}

#[divan::bench]
fn report_cifar_resnet1202() -> usize {
    report_file(&zoo("cifar.arch"), Some("cifar_resnet1202"))
}
