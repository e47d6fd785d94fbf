//! The TextMate grammar in editors/ against every zoo file: a small TextMate-style matcher
//! (earliest match wins, ties go to the first pattern) must give every non-blank character a
//! scope, and keywords, layers, numbers and comments the scopes an editor colours them by.

use std::path::Path;

use fancy_regex::Regex;
use serde_json::Value;

struct Pattern {
    re: Regex,
    name: Option<String>,
    captures: Vec<(usize, String)>,
}

fn patterns() -> Vec<Pattern> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("editors/vscode/syntaxes/arch.tmLanguage.json");
    let g: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(g["scopeName"], "source.arch");
    let repo = &g["repository"];
    g["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let key = p["include"].as_str().unwrap().trim_start_matches('#');
            let r = &repo[key];
            let re = Regex::new(r["match"].as_str().unwrap())
                .unwrap_or_else(|e| panic!("pattern {key}: {e}"));
            let captures = r["captures"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.parse().unwrap(), v["name"].as_str().unwrap().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            Pattern {
                re,
                name: r["name"].as_str().map(String::from),
                captures,
            }
        })
        .collect()
}

/// The scope of every byte of a line (`None` where nothing matched).
fn scopes(pats: &[Pattern], line: &str) -> Vec<Option<String>> {
    let mut out = vec![None; line.len()];
    let mut pos = 0;
    while pos < line.len() {
        let mut best: Option<(usize, usize, &Pattern, fancy_regex::Captures)> = None;
        for p in pats {
            if let Ok(Some(c)) = p.re.captures_from_pos(line, pos) {
                let m = c.get(0).unwrap();
                if m.end() == m.start() {
                    continue;
                }
                if best.as_ref().is_none_or(|(s, _, _, _)| m.start() < *s) {
                    best = Some((m.start(), m.end(), p, c));
                }
            }
        }
        let Some((start, end, p, c)) = best else {
            break;
        };
        if let Some(n) = &p.name {
            for s in out.iter_mut().take(end).skip(start) {
                *s = Some(n.clone());
            }
        }
        for (i, n) in &p.captures {
            if let Some(g) = c.get(*i) {
                for s in out.iter_mut().take(g.end()).skip(g.start()) {
                    *s = Some(n.clone());
                }
            }
        }
        pos = end;
    }
    out
}

fn scope_of(pats: &[Pattern], line: &str, word: &str) -> Option<String> {
    let i = line.find(word)?;
    scopes(pats, line)[i].clone()
}

#[test]
fn every_zoo_file_is_fully_highlighted() {
    let pats = patterns();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("architectures");
    let mut lines = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in text.lines().enumerate() {
            lines += 1;
            let sc = scopes(&pats, line);
            for (i, ch) in line.char_indices() {
                if !ch.is_whitespace() {
                    assert!(
                        sc[i].is_some(),
                        "{}:{}: `{ch}` at column {} has no scope: {line}",
                        path.display(),
                        n + 1,
                        i + 1
                    );
                }
            }
            let t = line.trim_start();
            if t.starts_with('#') {
                assert_eq!(
                    sc[line.len() - t.len()].as_deref(),
                    Some("comment.line.number-sign.arch")
                );
            }
        }
    }
    assert!(lines > 50);
}

#[test]
fn scopes_editors_colour_by() {
    let pats = patterns();
    let cases = [
        ("block basic(c) {", "block", "storage.type.arch"),
        ("block basic(c) {", "basic", "entity.name.function.arch"),
        (
            "network resnet18 = resnet(basic, 2)",
            "resnet18",
            "entity.name.function.arch",
        ),
        (
            "    conv 3x3, c, stride: stride",
            "conv",
            "support.function.layer.arch",
        ),
        (
            "    conv 3x3, c, stride: stride",
            "3x3",
            "constant.numeric.arch",
        ),
        (
            "    conv 3x3, c, stride: stride",
            "stride",
            "variable.parameter.arch",
        ),
        ("    conv2_x  basic(64) x n2", " x ", "keyword.control.arch"),
        (
            "    conv2_x  basic(64) x n2",
            "basic",
            "entity.name.function.call.arch",
        ),
        ("    shortcut B", "shortcut", "keyword.other.setting.arch"),
        ("    shortcut B", "B", "constant.language.arch"),
        (
            "    head     avgpool, dropout 0.5",
            "0.5",
            "constant.numeric.arch",
        ),
        ("use \"blocks.arch\"", "\"", "string.quoted.double.arch"),
        (
            "    conv 1x1, 4*c  # expand",
            "# expand",
            "comment.line.number-sign.arch",
        ),
        ("    conv 1x1, 4*c  # expand", "*", "keyword.operator.arch"),
    ];
    for (line, word, want) in cases {
        let probe = if word == " x " { "x" } else { word };
        let at = if word == " x " {
            line.find(" x ").unwrap() + 1
        } else {
            line.find(probe).unwrap()
        };
        let got = scopes(&pats, line)[at].clone();
        assert_eq!(got.as_deref(), Some(want), "`{word}` in `{line}`");
    }
    assert!(scope_of(&pats, "    input 3x224x224", "3x224x224").is_some());
}

/// The editor's layer and setting words are the grammar's (`archc_grammar::keywords`, read
/// from arch.pest by the grammar's build script): a kind added to the grammar and not here
/// fails this test.
#[test]
fn editor_keywords_are_the_grammars() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("editors/vscode/syntaxes/arch.tmLanguage.json");
    let g: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let words = |key: &str| -> Vec<String> {
        let re = g["repository"][key]["match"].as_str().unwrap();
        let inner = &re[re.find('(').unwrap() + 1..re.rfind(')').unwrap()];
        let mut w: Vec<String> = inner.split('|').map(String::from).collect();
        w.sort();
        w
    };
    let sorted = |l: &[&str]| -> Vec<String> {
        let mut w: Vec<String> = l.iter().map(|s| s.to_string()).collect();
        w.sort();
        w
    };
    assert_eq!(words("layer"), sorted(archc_grammar::keywords::LAYER_KINDS));
    assert_eq!(words("setting"), sorted(archc_grammar::keywords::SETTINGS));
}
