//! archc's compiler: `.arch` text to checked, typed, costed networks, and reports over them.
//! No Burn types here; the runtime crate consumes what `lower` produces.
//!
//! The pipeline, one function per pass:
//! `resolve::load` (parse with uses) → `resolve::resolve` (index, check names, reject cycles)
//! → `expand::expand` (bind, evaluate, unroll, insert shortcuts) → `infer::infer` (shapes and
//! costs) → `analysis::analyse` → `report::*`.

// Diagnostics carry spans, labels and help text; they are rare and boxed by miette anyway.
#![allow(clippy::result_large_err)]

pub mod analysis;
pub mod diag;
pub mod expand;
pub mod fmt;
pub mod graph;
pub mod infer;
pub mod layers;
pub mod lower;
pub mod naming;
pub mod report;
pub mod resolve;
pub mod source;
pub mod training;
pub mod unused;

use std::path::Path;

use archc_grammar::ast::FileId;

pub use diag::{CompileError, Diagnostics};
pub use expand::Overrides;
pub use infer::TypedGraph;
pub use resolve::Program;
pub use source::SourceSet;

/// Load and resolve a file and everything it uses.
pub fn load_program(sources: &mut SourceSet, root: FileId) -> Result<Program, Diagnostics> {
    let (files, mut diags) = resolve::load(sources, root);
    match resolve::resolve(&files, root) {
        Ok(p) if diags.is_empty() => Ok(p),
        Ok(_) => Err(diags.finish()),
        Err(d) => {
            diags.extend(d);
            Err(diags.finish())
        }
    }
}

/// Read a file from disk and resolve it. The source set is returned either way, for rendering.
pub fn load_path(path: &Path) -> (SourceSet, Result<Program, LoadError>) {
    let mut sources = SourceSet::new();
    let root = match sources.load(path) {
        Ok(id) => id,
        Err(e) => return (sources, Err(LoadError::Io(e))),
    };
    let r = load_program(&mut sources, root).map_err(LoadError::Diagnostics);
    (sources, r)
}

/// What `archc check` reports for one file: the networks that compiled, the program when it
/// resolved cleanly (for warnings), and every error.
#[derive(Debug)]
pub struct Checked {
    pub program: Option<Program>,
    pub networks: Vec<TypedGraph>,
    pub diags: Diagnostics,
}

/// Load, resolve and build every root network, collecting errors across phases: where
/// resolution fails (but no cycle does), the networks are still expanded without the
/// statements that failed, so a bad setting or value is reported beside an unknown name.
pub fn check_path(path: &Path, ov: &Overrides) -> (SourceSet, Result<Checked, std::io::Error>) {
    let mut sources = SourceSet::new();
    let root = match sources.load(path) {
        Ok(id) => id,
        Err(e) => return (sources, Err(e)),
    };
    let (files, mut diags) = resolve::load(&mut sources, root);
    let (prog, d) = resolve::resolve_partial(&files, root);
    let clean = diags.is_empty() && d.is_empty();
    diags.extend(d);
    let mut networks = Vec::new();
    if let Some(p) = &prog {
        let (nets, d) = build_networks(p, &p.root_networks, ov);
        networks = nets;
        diags.extend(d);
    }
    let checked = Checked {
        program: prog.filter(|_| clean),
        networks,
        diags: diags.finish(),
    };
    (sources, Ok(checked))
}

#[derive(Debug)]
pub enum LoadError {
    /// The root file itself cannot be read.
    Io(std::io::Error),
    Diagnostics(Diagnostics),
}

/// Expand and infer one network.
pub fn build_network(
    prog: &Program,
    name: &str,
    ov: &Overrides,
) -> Result<TypedGraph, Diagnostics> {
    let g = expand::expand(prog, name, ov)?;
    infer::infer(g)
}

/// Build every network the root file declares (or the named ones), collecting all errors.
pub fn build_networks(
    prog: &Program,
    names: &[String],
    ov: &Overrides,
) -> (Vec<TypedGraph>, Diagnostics) {
    let mut out = Vec::new();
    let mut diags = Diagnostics::new();
    for n in names {
        match build_network(prog, n, ov) {
            Ok(t) => out.push(t),
            Err(d) => diags.extend(d),
        }
    }
    (out, diags.finish())
}

/// Compile text held in memory (tests, tools): every root network, or the diagnostics.
pub fn compile_str(
    name: &str,
    text: &str,
    ov: &Overrides,
) -> (SourceSet, Result<Vec<TypedGraph>, Diagnostics>) {
    let mut sources = SourceSet::new();
    let root = sources.add(name, text);
    let r = load_program(&mut sources, root).and_then(|p| {
        let names = p.root_networks.clone();
        let (nets, d) = build_networks(&p, &names, ov);
        if d.is_empty() {
            Ok(nets)
        } else {
            Err(d)
        }
    });
    (sources, r)
}
