//! Warnings (issue 23, item 7): a block or family parameter its body never reads is reported
//! with its span and code, and the command still succeeds; used parameters (in expressions,
//! as a called block, in a family's settings) and the whole zoo give none.

use assert_cmd::Command;

fn check(src: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("w.arch");
    std::fs::write(&f, src).unwrap();
    let out = Command::cargo_bin("archc")
        .unwrap()
        .env("NO_COLOR", "1")
        .arg("check")
        .arg(&f)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn an_unused_block_parameter_is_a_warning_with_its_span() {
    let (code, err) = check(
        "block basic(c, unused) {\n    conv 3x3, c, stride: stride\n    conv 3x3, c\n}\n\nnetwork n {\n    input 3x32x32\n    conv1 conv 3x3, 16\n    s basic(16, 3) x 2\n    head avgpool, fc 10\n}\n",
    );
    assert_eq!(code, 0, "a warning does not fail the check: {err}");
    assert!(err.contains("archc::resolve::unused_parameter"), "{err}");
    assert!(
        err.contains("block `basic` never uses its parameter `unused`"),
        "{err}"
    );
    assert!(
        err.contains("w.arch:1:16"),
        "the span is the parameter: {err}"
    );
    assert!(err.contains("archc: 1 warning found"), "{err}");
}

#[test]
fn used_parameters_and_the_zoo_give_no_warning() {
    // Used in an expression, as the block called, as a repeat count and in a setting.
    let (code, err) = check(
        "block b(c) {\n    conv 3x3, 2*c\n}\n\nfamily f(block, n, k) {\n    input 3x32x32\n    classes k\n    s block(8) x n\n    head avgpool, fc classes\n}\n\nnetwork m = f(b, 2, 10)\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
    for e in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/architectures")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "arch") {
            let out = Command::cargo_bin("archc")
                .unwrap()
                .arg("check")
                .arg(&p)
                .output()
                .unwrap();
            let err = String::from_utf8(out.stderr).unwrap();
            assert!(!err.contains("warning"), "{}: {err}", p.display());
        }
    }
}
