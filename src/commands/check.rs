//! `archc check FILE...`: every error of every file, in one run.

use std::path::PathBuf;

use archc_compiler::{build_networks, Overrides};

use super::{load, print_diagnostics, Failure};

pub fn run(files: &[PathBuf], ov: &Overrides) -> Result<(), Failure> {
    let mut worst: Option<Failure> = None;
    for path in files {
        let (sources, prog) = match load(path) {
            Ok(x) => x,
            Err(f) => {
                worst = Some(worst.map_or(f, |w| if w == Failure::Usage { w } else { f }));
                continue;
            }
        };
        let names = prog.root_networks.clone();
        let (nets, diags) = build_networks(&prog, &names, ov);
        if diags.is_empty() {
            let n = nets.len();
            println!(
                "{}: ok ({n} network{})",
                path.display(),
                if n == 1 { "" } else { "s" }
            );
        } else {
            print_diagnostics(&diags, &sources);
            worst.get_or_insert(Failure::Input);
        }
    }
    worst.map_or(Ok(()), Err)
}
