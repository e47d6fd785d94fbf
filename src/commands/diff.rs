//! `archc diff A B`: two networks side by side, per stage and in total; `*` marks a row whose
//! output shape, parameters or mult-adds differ.

use std::path::{Path, PathBuf};

use archc_compiler::analysis::{analyse, dims_text, NetworkReport};
use archc_compiler::report::{si, thousands, TextTable};
use archc_compiler::{build_networks, Overrides};

use super::{load, print_diagnostics, select, Failure};

/// `FILE:NETWORK`, or `NETWORK` with `--file`.
fn split(spec: &str, file: Option<&Path>) -> Result<(PathBuf, String), Failure> {
    if let Some((f, n)) = spec.rsplit_once(':') {
        if !f.is_empty() && !n.is_empty() {
            return Ok((PathBuf::from(f), n.to_string()));
        }
    }
    match file {
        Some(f) => Ok((f.to_path_buf(), spec.to_string())),
        None => {
            eprintln!("archc: `{spec}` names no file: write FILE:NETWORK, or pass --file FILE");
            Err(Failure::Usage)
        }
    }
}

fn report(spec: &str, file: Option<&Path>, ov: &Overrides) -> Result<NetworkReport, Failure> {
    let (path, name) = split(spec, file)?;
    let (sources, prog) = load(&path)?;
    let names = select(&prog, &[name], &path)?;
    let (nets, diags) = build_networks(&prog, &names, ov);
    if !diags.is_empty() {
        print_diagnostics(&diags, &sources);
        return Err(Failure::Input);
    }
    Ok(analyse(&nets[0], 1))
}

fn delta(a: u128, b: u128) -> String {
    if a == b {
        "0".into()
    } else if b > a {
        format!("+{}", thousands(b - a))
    } else {
        format!("-{}", thousands(a - b))
    }
}

pub fn run(a: &str, b: &str, file: Option<&Path>, ov: &Overrides) -> Result<(), Failure> {
    let ra = report(a, file, ov)?;
    let rb = report(b, file, ov)?;
    print!("{}", render(&ra, &rb));
    Ok(())
}

pub fn render(a: &NetworkReport, b: &NetworkReport) -> String {
    let mut out = format!(
        "{} (A) against {} (B); * marks a difference\n\n",
        a.network, b.network
    );
    let mut t = TextTable::new(
        &[
            "",
            "stage",
            "output A",
            "output B",
            "params A",
            "params B",
            "Δ params",
            "MACs A",
            "MACs B",
            "Δ MACs",
        ],
        &[
            false, false, false, false, true, true, true, true, true, true,
        ],
    );
    let mut order: Vec<&str> = a.stages.iter().map(|s| s.name.as_str()).collect();
    for s in &b.stages {
        if !order.contains(&s.name.as_str()) {
            order.push(&s.name);
        }
    }
    for name in order {
        let sa = a.stages.iter().find(|s| s.name == name);
        let sb = b.stages.iter().find(|s| s.name == name);
        let out_text = |s: Option<&archc_compiler::analysis::StageReport>| {
            s.map(|s| dims_text(&s.output))
                .unwrap_or_else(|| "-".into())
        };
        let (pa, pb) = (sa.map_or(0, |s| s.params), sb.map_or(0, |s| s.params));
        let (ma, mb) = (sa.map_or(0, |s| s.macs), sb.map_or(0, |s| s.macs));
        let differs = sa.map(|s| &s.output) != sb.map(|s| &s.output) || pa != pb || ma != mb;
        t.row(vec![
            if differs { "*".into() } else { String::new() },
            name.to_string(),
            out_text(sa),
            out_text(sb),
            thousands(pa),
            thousands(pb),
            delta(pa, pb),
            si(ma),
            si(mb),
            delta(ma, mb),
        ]);
    }
    t.rule();
    let differs = a.output != b.output || a.params != b.params || a.macs != b.macs;
    t.row(vec![
        if differs { "*".into() } else { String::new() },
        "total".into(),
        dims_text(&a.output),
        dims_text(&b.output),
        thousands(a.params),
        thousands(b.params),
        delta(a.params, b.params),
        si(a.macs),
        si(b.macs),
        delta(a.macs, b.macs),
    ]);
    out.push_str(&t.render());
    out.push_str(&format!(
        "\nbuffers: {} vs {}; full FLOPs: {} vs {}; shortcut: {} vs {}\n",
        thousands(a.buffers),
        thousands(b.buffers),
        si(a.flops),
        si(b.flops),
        a.shortcut,
        b.shortcut
    ));
    out
}
