//! `archc check FILE...`: every error of every file, in one run. A file whose names fail to
//! resolve is still expanded without the failed statements, so its bad settings and values
//! are reported too (`archc_compiler::check_path`).

use std::path::PathBuf;

use archc_compiler::{check_path, Overrides};

use super::{print_diagnostics, print_warnings, Failure};

pub fn run(files: &[PathBuf], ov: &Overrides) -> Result<(), Failure> {
    let mut worst: Option<Failure> = None;
    for path in files {
        let (sources, checked) = check_path(path, ov);
        let checked = match checked {
            Ok(c) => c,
            Err(e) => {
                eprintln!("archc: cannot read `{}`: {e}", path.display());
                worst = Some(Failure::Usage);
                continue;
            }
        };
        if let Some(p) = &checked.program {
            let warnings = archc_compiler::unused::unused_parameters(p);
            if !warnings.is_empty() {
                print_warnings(&warnings, &sources);
            }
        }
        if checked.diags.is_empty() {
            let n = checked.networks.len();
            println!(
                "{}: ok ({n} network{})",
                path.display(),
                if n == 1 { "" } else { "s" }
            );
        } else {
            print_diagnostics(&checked.diags, &sources);
            worst.get_or_insert(Failure::Input);
        }
    }
    worst.map_or(Ok(()), Err)
}
