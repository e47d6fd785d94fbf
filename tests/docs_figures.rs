//! The figures the docs quote from archc's own counting cannot drift from what archc prints
//! (issue 24): in README.md, docs/*.md and docs/results/*/summary.md, every markdown table
//! whose first column is `network` has its `parameters` and `mult-adds` columns checked
//! against the zoo's reports (exact, or as `archc report` rounds: `1.814 G`, `40.6 M`); the
//! `# "macs": N` comments after `archc report ... --format json` commands are checked; and
//! every `$ archc ...` example with its output is run and compared line by line. Measured figures
//! (times, errors, speeds) are not checked here: the docs give each its command or date.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use archc_compiler::analysis::analyse;
use archc_compiler::report::si;
use archc_compiler::{build_network, load_path, Overrides};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every network of the zoo: (file name, params, MACs).
fn zoo() -> BTreeMap<String, (String, u128, u128)> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(root().join("architectures")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "arch") {
            continue;
        }
        let (sources, prog) = load_path(&path);
        let prog = prog.unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
        for n in &prog.root_networks {
            let t = build_network(&prog, n, &Overrides::default())
                .unwrap_or_else(|d| panic!("{n}: {}", d.render_plain(&sources)));
            let r = analyse(&t, 1);
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            out.insert(n.clone(), (file, r.params, r.macs));
        }
    }
    out
}

fn docs() -> Vec<PathBuf> {
    let mut v = vec![root().join("README.md")];
    for dir in ["docs", "docs/results"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "md") {
                v.push(p);
            } else if p.join("summary.md").is_file() {
                v.push(p.join("summary.md"));
            }
        }
    }
    v.sort();
    v
}

fn cells(line: &str) -> Vec<String> {
    let t = line.trim().trim_start_matches('|').trim_end_matches('|');
    t.split('|').map(|c| c.trim().replace('`', "")).collect()
}

/// `cifar_resnet20 / 56 / 110` → the three names; `resnet50 (paper) / resnet50_tv` → two.
fn names(cell: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in cell.split('/') {
        let name = part.split('(').next().unwrap().trim();
        if name.chars().all(|c| c.is_ascii_digit()) {
            let first = &out[0];
            let stem = first.trim_end_matches(|c: char| c.is_ascii_digit());
            out.push(format!("{stem}{name}"));
        } else {
            out.push(name.to_string());
        }
    }
    out
}

/// A figure as written: `25,557,032` (exact) or `1.814 G` (as archc rounds it).
fn agrees(written: &str, value: u128) -> bool {
    let written = written.trim();
    let exact = written.replace(',', "");
    if exact.chars().all(|c| c.is_ascii_digit()) {
        exact.parse::<u128>() == Ok(value)
    } else {
        written == si(value)
    }
}

#[test]
fn parameter_and_mult_add_figures_in_the_docs_are_archcs() {
    let zoo = zoo();
    let (mut checked, mut wrong) = (0, Vec::new());
    for doc in docs() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let rel = doc.strip_prefix(root()).unwrap().display().to_string();
        let mut columns: Option<Vec<(usize, bool)>> = None; // (column, is MACs)
        for (k, line) in text.lines().enumerate() {
            if !line.trim_start().starts_with('|') {
                columns = None;
                continue;
            }
            let row = cells(line);
            if row[0] == "network" {
                let cols: Vec<(usize, bool)> = row
                    .iter()
                    .enumerate()
                    .filter_map(|(i, h)| {
                        if h.starts_with("param") {
                            Some((i, false))
                        } else if h.starts_with("mult-adds") {
                            Some((i, true))
                        } else {
                            None
                        }
                    })
                    .collect();
                columns = Some(cols);
                continue;
            }
            let Some(cols) = &columns else { continue };
            if row[0].starts_with("---") || cols.is_empty() {
                continue;
            }
            let nets = names(&row[0]);
            for &(col, is_macs) in cols {
                let figures: Vec<&str> = row[col].split(" / ").collect();
                for (j, net) in nets.iter().enumerate() {
                    let figure = if figures.len() == 1 {
                        figures[0]
                    } else {
                        figures[j]
                    };
                    let Some((_, params, macs)) = zoo.get(net) else {
                        wrong.push(format!("{rel}:{}: `{net}` is no network of the zoo", k + 1));
                        continue;
                    };
                    let value = if is_macs { *macs } else { *params };
                    checked += 1;
                    if !agrees(figure, value) {
                        wrong.push(format!(
                            "{rel}:{}: {net} {} `{figure}`, archc {} ({})",
                            k + 1,
                            if is_macs { "mult-adds" } else { "parameters" },
                            value,
                            si(value)
                        ));
                    }
                }
            }
        }
        // `archc report architectures/F --network N --format json   # "macs": N`
        for (k, line) in text.lines().enumerate() {
            let Some((cmd, comment)) = line.split_once("# \"") else {
                continue;
            };
            let words: Vec<&str> = cmd.split_whitespace().collect();
            let Some(n) = words.iter().position(|w| *w == "--network") else {
                continue;
            };
            let (key, figure) = comment.split_once("\": ").unwrap();
            let (_, params, macs) = &zoo[words[n + 1]];
            let value = match key {
                "macs" => *macs,
                "params" => *params,
                _ => panic!("{rel}:{}: unknown key {key}", k + 1),
            };
            checked += 1;
            if !agrees(figure, value) {
                wrong.push(format!("{rel}:{}: {key} {figure}, archc {value}", k + 1));
            }
        }
    }
    println!("{checked} figures checked");
    assert!(
        wrong.is_empty(),
        "the docs disagree with archc:\n{}",
        wrong.join("\n")
    );
    // The README table, Section 4.2, Table 1, the arithmetic table and the experiments' tables.
    assert!(
        checked >= 100,
        "only {checked} figures found: has the table layout changed?"
    );
}

/// Every ```text block of the docs that starts with `$ archc ...`: the command is run (with
/// bash, so a `| grep` works) in the repository, or, when its file is not there, in a folder
/// holding the doc's nearest ```arch block above it under that name; the lines shown (up to a
/// `...` line) must be the first lines it prints.
#[test]
fn the_docs_archc_examples_are_what_archc_prints() {
    let bin = Path::new(env!("CARGO_BIN_EXE_archc"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (mut run, mut wrong) = (0, Vec::new());
    for doc in docs() {
        let text = std::fs::read_to_string(&doc).unwrap();
        let rel = doc.strip_prefix(root()).unwrap().display().to_string();
        let lines: Vec<&str> = text.lines().collect();
        let mut last_arch: Option<String> = None;
        let mut k = 0;
        while k < lines.len() {
            let fence = lines[k].trim_start();
            let indent = lines[k].len() - fence.len();
            let Some(info) = fence.strip_prefix("```") else {
                k += 1;
                continue;
            };
            let mut body = Vec::new();
            let mut j = k + 1;
            while j < lines.len() && !lines[j].trim_start().starts_with("```") {
                body.push(lines[j].get(indent..).unwrap_or("").to_string());
                j += 1;
            }
            let at = k + 1;
            k = j + 1;
            if info.trim() == "arch" {
                last_arch = Some(body.join("\n") + "\n");
                continue;
            }
            let Some(command) = body.first().and_then(|l| l.strip_prefix("$ archc ")) else {
                continue;
            };
            let file = command.split_whitespace().nth(1).unwrap_or("");
            let dir = tempfile::tempdir().unwrap();
            let cwd = if root().join(file).is_file() {
                root().to_path_buf()
            } else {
                let src = last_arch.clone().unwrap_or_else(|| {
                    panic!("{rel}:{at}: no ```arch block before `archc {command}`")
                });
                std::fs::write(dir.path().join(file), src).unwrap();
                dir.path().to_path_buf()
            };
            let o = Command::new("bash")
                .args(["-o", "pipefail", "-c", &format!("archc {command}")])
                .current_dir(&cwd)
                .env("PATH", &path)
                .env("NO_COLOR", "1")
                .output()
                .unwrap();
            run += 1;
            let out = String::from_utf8_lossy(&o.stdout);
            let shown: Vec<&str> = body[1..]
                .iter()
                .map(String::as_str)
                .take_while(|l| *l != "...")
                .collect();
            let printed: Vec<&str> = out.lines().take(shown.len()).collect();
            if !o.status.success() || shown != printed {
                wrong.push(format!(
                    "{rel}:{at}: `archc {command}` shows\n{}\nbut prints\n{}{}",
                    shown.join("\n"),
                    printed.join("\n"),
                    String::from_utf8_lossy(&o.stderr)
                ));
            }
        }
    }
    println!("{run} examples run");
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
    // README's resnet50 and docs/language.md's tiny, hw and cifar_preact_resnet164.
    assert!(run >= 4, "only {run} examples found");
}
