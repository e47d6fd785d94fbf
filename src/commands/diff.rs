//! `archc diff A B`: two networks side by side, per stage and in total; `*` marks a row whose
//! output shape, repeat count, parameters or mult-adds differ. Each delta is in its columns'
//! units (parameters exact, mult-adds as `1.2 M`); repeat counts read `×3` as in `archc table`.

use std::path::{Path, PathBuf};

use archc_compiler::analysis::{analyse, dims_text, NetworkReport};
use archc_compiler::graph::SegmentInfo;
use archc_compiler::infer::TypedGraph;
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

/// A network's report and each stage's repeat counts, `×3` (one per repeated segment, `+`
/// between two; empty for a stage of single layers), as `archc table` prints them.
pub struct Side {
    pub report: NetworkReport,
    pub repeats: Vec<(String, String)>,
}

impl Side {
    pub fn new(t: &TypedGraph) -> Self {
        let repeats = t
            .graph
            .stages
            .iter()
            .map(|s| {
                let r: Vec<String> = s
                    .segments
                    .iter()
                    .filter_map(|g| match g {
                        SegmentInfo::Blocks { repeat, .. } => Some(format!("×{repeat}")),
                        SegmentInfo::Layer { .. } => None,
                    })
                    .collect();
                (s.name.clone(), r.join("+"))
            })
            .collect();
        Side {
            report: analyse(t, 1),
            repeats,
        }
    }

    fn repeat(&self, stage: &str) -> Option<&str> {
        self.repeats
            .iter()
            .find(|(n, _)| n == stage)
            .map(|(_, r)| r.as_str())
    }
}

fn report(spec: &str, file: Option<&Path>, ov: &Overrides) -> Result<Side, Failure> {
    let (path, name) = split(spec, file)?;
    let (sources, prog) = load(&path)?;
    let names = select(&prog, &[name], &path)?;
    let (nets, diags) = build_networks(&prog, &names, ov);
    if !diags.is_empty() {
        print_diagnostics(&diags, &sources);
        return Err(Failure::Input);
    }
    Ok(Side::new(&nets[0]))
}

/// `b - a` with its sign, written by `unit` (the columns' own format).
fn delta(a: u128, b: u128, unit: fn(u128) -> String) -> String {
    if a == b {
        "0".into()
    } else if b > a {
        format!("+{}", unit(b - a))
    } else {
        format!("-{}", unit(a - b))
    }
}

pub fn run(a: &str, b: &str, file: Option<&Path>, ov: &Overrides) -> Result<(), Failure> {
    let ra = report(a, file, ov)?;
    let rb = report(b, file, ov)?;
    print!("{}", render(&ra, &rb));
    Ok(())
}

pub fn render(sa: &Side, sb: &Side) -> String {
    let (a, b) = (&sa.report, &sb.report);
    let mut out = format!(
        "{} (A) against {} (B); * marks a difference\n\n",
        a.network, b.network
    );
    let mut t = TextTable::new(
        &[
            "",
            "stage",
            "× A",
            "× B",
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
            false, false, true, true, false, false, true, true, true, true, true, true,
        ],
    );
    let mut order: Vec<&str> = a.stages.iter().map(|s| s.name.as_str()).collect();
    for s in &b.stages {
        if !order.contains(&s.name.as_str()) {
            order.push(&s.name);
        }
    }
    for name in order {
        let (xa, xb) = (sa.repeat(name), sb.repeat(name));
        let sa = a.stages.iter().find(|s| s.name == name);
        let sb = b.stages.iter().find(|s| s.name == name);
        let out_text = |s: Option<&archc_compiler::analysis::StageReport>| {
            s.map(|s| dims_text(&s.output))
                .unwrap_or_else(|| "-".into())
        };
        let (pa, pb) = (sa.map_or(0, |s| s.params), sb.map_or(0, |s| s.params));
        let (ma, mb) = (sa.map_or(0, |s| s.macs), sb.map_or(0, |s| s.macs));
        let differs =
            sa.map(|s| &s.output) != sb.map(|s| &s.output) || xa != xb || pa != pb || ma != mb;
        t.row(vec![
            if differs { "*".into() } else { String::new() },
            name.to_string(),
            xa.unwrap_or("-").to_string(),
            xb.unwrap_or("-").to_string(),
            out_text(sa),
            out_text(sb),
            thousands(pa),
            thousands(pb),
            delta(pa, pb, thousands),
            si(ma),
            si(mb),
            delta(ma, mb, si),
        ]);
    }
    t.rule();
    let differs = a.output != b.output || a.params != b.params || a.macs != b.macs;
    t.row(vec![
        if differs { "*".into() } else { String::new() },
        "total".into(),
        String::new(),
        String::new(),
        dims_text(&a.output),
        dims_text(&b.output),
        thousands(a.params),
        thousands(b.params),
        delta(a.params, b.params, thousands),
        si(a.macs),
        si(b.macs),
        delta(a.macs, b.macs, si),
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
