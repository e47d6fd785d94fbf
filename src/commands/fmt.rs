//! `archc fmt [--check] FILE...`: the canonical layout. A file that does not parse is left
//! alone (its syntax errors are printed); a formatted file is written to a temporary file
//! beside it and renamed over it, so it is never half-written.

use std::path::{Path, PathBuf};

use archc_compiler::diag::Diagnostics;
use archc_compiler::{CompileError, SourceSet};
use archc_grammar::ast::FileId;

use super::{print_diagnostics, Failure};

pub fn run(files: &[PathBuf], check: bool) -> Result<(), Failure> {
    let mut worst: Option<Failure> = None;
    let mut unformatted = 0;
    for path in files {
        match one(path, check) {
            Ok(changed) => {
                if changed {
                    unformatted += 1;
                    if check {
                        println!("{}: not formatted", path.display());
                    } else {
                        println!("{}: formatted", path.display());
                    }
                }
            }
            Err(f) => {
                worst = Some(match worst {
                    Some(Failure::Usage) => Failure::Usage,
                    _ => f,
                })
            }
        }
    }
    if let Some(f) = worst {
        return Err(f);
    }
    if check && unformatted > 0 {
        return Err(Failure::Input);
    }
    Ok(())
}

/// Format one file; `Ok(true)` if it was (or, with `check`, would be) changed.
fn one(path: &Path, check: bool) -> Result<bool, Failure> {
    let mut sources = SourceSet::new();
    let id = match sources.load(path) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("archc: cannot read `{}`: {e}", path.display());
            return Err(Failure::Usage);
        }
    };
    let text = sources.text(id).to_string();
    if let Err(errs) = archc_grammar::parse(&text, FileId(id.0)) {
        let mut d = Diagnostics::new();
        for e in errs {
            d.push(id, CompileError::Syntax(e));
        }
        print_diagnostics(&d, &sources);
        return Err(Failure::Input);
    }
    let formatted = archc_compiler::fmt::format(&text);
    // The formatter only moves whitespace; refuse to write anything else.
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    if squash(&formatted) != squash(&text) {
        eprintln!(
            "archc: internal error: formatting `{}` would change more than whitespace; file left as it was",
            path.display()
        );
        return Err(Failure::Input);
    }
    if formatted == text {
        return Ok(false);
    }
    if !check {
        let tmp = path.with_extension("arch.archc-fmt.tmp");
        let written = std::fs::write(&tmp, &formatted).and_then(|_| std::fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            eprintln!("archc: cannot write `{}`: {e}", path.display());
            return Err(Failure::Usage);
        }
    }
    Ok(true)
}
