//! Every bad input in tests/fixtures/bad: it must fail with the diagnostic code its first line
//! names (`# expect: CODE`), never panic, and render (without colour) as its snapshot shows.

use std::path::Path;

use archc_compiler::{check_path, Overrides};

/// Check a file as `archc check` does; return the rendered diagnostics and their codes (empty
/// if it compiled).
fn diagnose(rel: &Path) -> (String, Vec<String>) {
    let (sources, checked) = check_path(rel, &Overrides::default());
    let d = match checked {
        Ok(c) => c.diags,
        Err(e) => panic!("cannot read {}: {e}", rel.display()),
    };
    let codes = d.errors.iter().map(|l| l.error.code()).collect();
    (d.render_plain(&sources), codes)
}

#[test]
fn bad_inputs_give_their_diagnostic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    insta::glob!("fixtures/bad", "*.arch", |path| {
        let rel = path.strip_prefix(root).expect("fixture under the package");
        let text = std::fs::read_to_string(path).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks an `# expect: CODE` line", rel.display()))
            .trim()
            .to_string();
        let (rendered, codes) = diagnose(rel);
        assert!(
            codes.contains(&expect),
            "{}: expected {expect}, got {codes:?}\n{rendered}",
            rel.display()
        );
        // Every diagnostic carries a label on a span (the rendering shows the source line).
        assert!(
            rendered.contains('╭'),
            "{}: no source span rendered\n{rendered}",
            rel.display()
        );
        insta::assert_snapshot!(rendered);
    });
}

#[test]
fn at_least_thirty_kinds_of_mistake_are_covered() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad");
    let mut codes = std::collections::BTreeSet::new();
    let mut files = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        files += 1;
        codes.insert(text.lines().next().unwrap().to_string());
    }
    assert!(files >= 30, "{files} fixtures");
    assert!(
        codes.len() >= 25,
        "{} distinct codes: {codes:?}",
        codes.len()
    );
}

#[test]
fn every_error_of_a_file_is_reported_in_one_run() {
    let (rendered, codes) = diagnose(Path::new("tests/fixtures/bad/many_errors_at_once.arch"));
    assert!(codes.len() >= 4, "{codes:?}\n{rendered}");
}

#[test]
fn errors_of_later_phases_come_with_unknown_names() {
    let (rendered, codes) = diagnose(Path::new(
        "tests/fixtures/bad/unknown_name_and_bad_setting.arch",
    ));
    for code in [
        "archc::resolve::unknown_name",
        "archc::layer::bad_value",
        "archc::size::non_positive",
    ] {
        assert!(
            codes.iter().any(|c| c == code),
            "{code} missing: {codes:?}\n{rendered}"
        );
    }
}
