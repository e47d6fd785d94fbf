//! The language's one keyword table is `src/arch.pest`: its `layer_kind`, `keyword` and
//! `setting_key` rules. This script reads the words of those rules and writes them as Rust
//! constants (`$OUT_DIR/keywords.rs`), so syntax errors, `is_keyword`, the compiler's op units
//! and the editor grammar's test all use the list the parser uses. A new layer kind is one
//! word added to `layer_kind`.

use std::path::PathBuf;

/// The quoted words of the rule `name` (its one line in the grammar).
fn words(grammar: &str, name: &str) -> Vec<String> {
    let line = grammar
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name) && l.contains('='))
        .unwrap_or_else(|| panic!("arch.pest has no rule `{name}`"));
    line.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn list(name: &str, doc: &str, w: &[String]) -> String {
    let items: Vec<String> = w.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "/// {doc}\npub const {name}: &[&str] = &[{}];\n",
        items.join(", ")
    )
}

fn main() {
    let path = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("src/arch.pest");
    println!("cargo:rerun-if-changed={}", path.display());
    let grammar = std::fs::read_to_string(&path).expect("read arch.pest");
    let layers = words(&grammar, "layer_kind");
    // PEG takes the first alternative that matches: a word that is a prefix of a later one
    // (`relu` before `relu6`) would hide it.
    for (i, a) in layers.iter().enumerate() {
        for b in &layers[i + 1..] {
            assert!(
                !b.starts_with(a.as_str()),
                "arch.pest: layer_kind lists `{a}` before `{b}`, which it would hide: put `{b}` first"
            );
        }
    }
    let mut reserved = words(&grammar, "keyword");
    reserved.extend(layers.iter().cloned());
    let settings = words(&grammar, "setting_key");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("keywords.rs");
    let text = [
        list(
            "LAYER_KINDS",
            "Every layer kind, as the grammar's `layer_kind` lists them.",
            &layers,
        ),
        list(
            "RESERVED",
            "Words that cannot name a block, family, network or parameter.",
            &reserved,
        ),
        list(
            "SETTINGS",
            "The network settings (`setting_key`).",
            &settings,
        ),
    ]
    .concat();
    std::fs::write(out, text).expect("write keywords.rs");
}
