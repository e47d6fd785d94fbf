//! `archc fmt`: one canonical layout, idempotent, comments kept, meaning unchanged.

use std::path::Path;

use archc_compiler::analysis::analyse;
use archc_compiler::fmt::format;
use archc_compiler::lower::{lower, to_text};
use archc_compiler::{build_network, load_path, report, Overrides};
use assert_cmd::Command;

fn zoo() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("architectures");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "arch"))
        .collect();
    v.sort();
    v
}

/// Every network of a file: its JSON report and its lowered graph.
fn meaning(path: &Path) -> String {
    let (sources, prog) = load_path(path);
    let prog = match prog {
        Ok(p) => p,
        Err(archc_compiler::LoadError::Diagnostics(d)) => panic!("{}", d.render_plain(&sources)),
        Err(e) => panic!("{e:?}"),
    };
    let mut out = String::new();
    for n in &prog.root_networks {
        let t = build_network(&prog, n, &Overrides::default()).unwrap();
        out += &report::json(&[analyse(&t, 1)]);
        out += &to_text(&lower(&t));
    }
    out
}

#[test]
fn formatting_is_idempotent_and_keeps_comments() {
    for p in zoo() {
        let text = std::fs::read_to_string(&p).unwrap();
        let once = format(&text);
        assert_eq!(format(&once), once, "{}", p.display());
        let comments = |s: &str| s.lines().filter(|l| l.contains('#')).count();
        assert_eq!(comments(&once), comments(&text), "{}", p.display());
    }
    // Also on every bad input (formatting does not need a valid network, only valid syntax).
    let bad = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
    for e in std::fs::read_dir(bad).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let once = format(&text);
        assert_eq!(format(&once), once);
    }
}

#[test]
fn the_zoo_is_formatted() {
    for p in zoo() {
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(
            format(&text),
            text,
            "{} is not in the canonical layout: run `archc fmt`",
            p.display()
        );
    }
}

#[test]
fn formatted_files_compile_to_the_same_networks() {
    let dir = tempfile::tempdir().unwrap();
    // A messy copy of the zoo: indentation and spacing scrambled, then formatted back.
    for p in zoo() {
        let text = std::fs::read_to_string(&p).unwrap();
        let messy: String = text
            .lines()
            .map(|l| {
                // Scramble the code, not the comment text (which fmt keeps verbatim).
                let (code, comment) = l.split_once('#').map_or((l, None), |(c, m)| (c, Some(m)));
                let code = code.trim().replace(", ", " ,").replace(": ", ":");
                match comment {
                    Some(m) => format!("  {code}   #{m}\n"),
                    None => format!("  {code}\n"),
                }
            })
            .collect();
        let out = dir.path().join(p.file_name().unwrap());
        std::fs::write(&out, format(&messy)).unwrap();
    }
    for p in zoo() {
        if std::fs::read_to_string(&p).unwrap().contains("network") {
            let formatted = dir.path().join(p.file_name().unwrap());
            assert_eq!(meaning(&formatted), meaning(&p), "{}", p.display());
            assert_eq!(
                std::fs::read_to_string(&formatted).unwrap(),
                std::fs::read_to_string(&p).unwrap(),
                "formatting a scrambled copy gives back the canonical file"
            );
        }
    }
}

#[test]
fn fmt_command_checks_writes_and_refuses_bad_syntax() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("n.arch");
    std::fs::write(&f, "network n {\n  input 3x8x8\n  c   conv 3x3,4\n}\n").unwrap();
    let run = |args: &[&str]| {
        Command::cargo_bin("archc")
            .unwrap()
            .env("NO_COLOR", "1")
            .args(args)
            .output()
            .unwrap()
    };
    let path = f.to_str().unwrap();
    assert_eq!(run(&["fmt", "--check", path]).status.code(), Some(1));
    assert_eq!(run(&["fmt", path]).status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "network n {\n    input 3x8x8\n    c     conv 3x3, 4\n}\n"
    );
    assert_eq!(run(&["fmt", "--check", path]).status.code(), Some(0));
    let bad = dir.path().join("bad.arch");
    let text = "network n {\n  input 3x8x8\n  c conv 3x3 4\n}\n";
    std::fs::write(&bad, text).unwrap();
    let out = run(&["fmt", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&bad).unwrap(),
        text,
        "left as it was"
    );
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 2, "no temporary file left behind");
}

/// Issue 23, item 6: comments the author aligned in a column stay aligned (as rustfmt keeps
/// them); a lone trailing comment gets two spaces, as before.
#[test]
fn aligned_trailing_comments_stay_aligned() {
    let src = "network n {\n    input    3x32x32      # CIFAR\n    conv1    conv 3x3, 16 # the stem\n    head     avgpool, fc 10   # a lone one\n}\n";
    let out = archc_compiler::fmt::format(src);
    let lines: Vec<&str> = out.lines().collect();
    let col = |l: &str| l.find('#').unwrap();
    assert_eq!(col(lines[1]), col(lines[2]), "{out}");
    assert!(lines[3].contains("fc 10  # a lone one"), "{out}");
    // Idempotent.
    assert_eq!(archc_compiler::fmt::format(&out), out);
}
