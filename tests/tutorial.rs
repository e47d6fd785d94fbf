//! docs/tutorial.md cannot rot: every ```arch file=NAME block is written, and every ```sh block
//! is run with bash in one empty folder, in order, with the archc under test first on PATH. A
//! block marked ```sh fails must exit non-zero; every other must succeed. Then the files the
//! tutorial promises are checked.

#![cfg(feature = "runtime")]

use std::path::Path;
use std::process::Command;

enum Block {
    File(String, String),
    Shell { script: String, fails: bool },
}

fn blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = md.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let info = info.trim().to_string();
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        if let Some(name) = info.strip_prefix("arch file=") {
            out.push(Block::File(name.trim().to_string(), body));
        } else if info == "sh" || info == "sh fails" {
            out.push(Block::Shell {
                script: body,
                fails: info == "sh fails",
            });
        }
    }
    out
}

#[test]
fn every_command_of_the_tutorial_runs() {
    let md =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/tutorial.md"))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_archc"));
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (mut files, mut shells) = (0, 0);
    for b in blocks(&md) {
        match b {
            Block::File(name, text) => {
                std::fs::write(dir.path().join(name), text).unwrap();
                files += 1;
            }
            Block::Shell { script, fails } => {
                shells += 1;
                let o = Command::new("bash")
                    .args(["-eo", "pipefail", "-c", &script])
                    .current_dir(dir.path())
                    .env("PATH", &path)
                    .env("NO_COLOR", "1")
                    .output()
                    .unwrap();
                let err = String::from_utf8_lossy(&o.stderr);
                if fails {
                    assert!(!o.status.success(), "expected a failure:\n{script}");
                    assert!(err.contains("archc::shape::stride_unused"), "{err}");
                } else {
                    assert!(o.status.success(), "{script}\n{err}");
                }
            }
        }
    }
    assert!(
        files >= 2 && shells >= 6,
        "{files} files, {shells} command blocks"
    );
    let d = dir.path();
    for f in [
        "wrn10_2.lowered.txt",
        "wrn10_2.lowered.json",
        "wrn10_2.rs",
        "runs/wrn10_2/config.json",
        "runs/wrn10_2/metrics.csv",
        "runs/wrn10_2/metrics.jsonl",
        "runs/wrn10_2/error.svg",
        "runs/wrn10_2/error.png",
        "wrn10_2-error.svg",
        "wrn10_2-error.png",
    ] {
        let m = std::fs::metadata(d.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(m.len() > 0, "{f} is empty");
    }
    let lowered = std::fs::read_to_string(d.join("wrn10_2.lowered.txt")).unwrap();
    assert!(lowered.contains("downsample.0 = Conv2d"), "{lowered}");
    let csv = std::fs::read_to_string(d.join("runs/wrn10_2/metrics.csv")).unwrap();
    assert!(
        csv.starts_with("iteration,train_loss,train_error,test_error"),
        "{csv}"
    );
}
