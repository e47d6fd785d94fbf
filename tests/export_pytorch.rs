//! `archc export --format pytorch` (tests/export.rs has the ONNX format): the module's text for a small network (a snapshot), where
//! it goes (`-o`, written whole or not at all) and the usage errors. The exported modules of
//! the whole zoo run against `archc forward` and torchvision in CI
//! (scripts/pytorch_export_check.py).

use assert_cmd::Command;

fn archc() -> Command {
    let mut c = Command::cargo_bin("archc").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env("NO_COLOR", "1");
    c
}

fn export(args: &[&str]) -> std::process::Output {
    archc().arg("export").args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every unit op on maps and on vectors (the runtime's codegen fixture), as a Python module.
#[test]
fn pytorch_module_of_the_unit_ops() {
    let out = export(&[
        "runtime/tests/fixtures/units.arch",
        "-n",
        "units",
        "-f",
        "pytorch",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    insta::assert_snapshot!(text(&out.stdout));
}

#[test]
fn pytorch_forward_reads_like_the_arch_file() {
    let out = export(&[
        "architectures/cifar.arch",
        "-n",
        "cifar_resnet20",
        "-f",
        "pytorch",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let py = text(&out.stdout);
    for line in [
        "class CifarResnet20(Tree):",
        "        self.place(\"layer2.0.conv1\", nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False))",
        "        # conv3_x  basic(32) x n, stride: 2",
        "        x30 = F.pad(x24[:, :, ::2, ::2], (0, 0, 0, 0, 8, 8))  # layer2.0.shortcut",
        "        x31 = x29 + x30  # layer2.0.add",
        "def build():",
    ] {
        assert!(py.lines().any(|l| l == line), "no line `{line}` in:\n{py}");
    }
}

#[test]
fn out_file_is_written_whole_and_an_error_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("net.py");
    let f = f.to_str().unwrap();
    let args = [
        "architectures/cifar.arch",
        "-n",
        "cifar_resnet20",
        "-f",
        "pytorch",
    ];
    let out = export(&[&args[..], &["-o", f]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(f).unwrap();
    assert_eq!(written, text(&export(&args).stdout));
    // Nothing beside it (the temporary file is renamed over it).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // A network that does not compile leaves the file as it was.
    let bad = export(&[
        "tests/fixtures/bad/groups_do_not_divide.arch",
        "-n",
        "n",
        "-f",
        "pytorch",
        "-o",
        f,
    ]);
    assert!(!bad.status.success());
    assert_eq!(std::fs::read_to_string(f).unwrap(), written);
    // A folder that does not exist: a clear error, exit 2.
    let missing = dir.path().join("no/such/dir/net.py");
    let out = export(&[&args[..], &["-o", missing.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot write"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn usage_errors_exit_two() {
    let base = ["architectures/cifar.arch", "-n", "cifar_resnet20"];
    // An unknown format: clap names the ones there are.
    let out = export(&[&base[..], &["-f", "keras"]].concat());
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("onnx") && err.contains("pytorch"), "{err}");
    // An unknown network: the file's networks are listed.
    let out = export(&["architectures/cifar.arch", "-n", "resnet9", "-f", "pytorch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no network `resnet9`"));
    // ONNX-only flags.
    for flag in [["--weights", "w.safetensors"], ["--opset", "17"]] {
        let out = export(&[&base[..], &["-f", "pytorch"], &flag[..]].concat());
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out.stderr).contains("applies to `--format onnx` only"),
            "{}",
            text(&out.stderr)
        );
    }
}
