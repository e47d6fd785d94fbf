//! The command line: exit codes (0 fine, 1 input errors, 2 bad usage) and output formats.

use assert_cmd::Command;

fn archc() -> Command {
    let mut c = Command::cargo_bin("archc").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env("NO_COLOR", "1");
    c
}

fn stdout(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn check_the_whole_zoo_exits_zero() {
    let out = stdout(archc().args([
        "check",
        "architectures/resnet.arch",
        "architectures/vgg.arch",
        "architectures/cifar.arch",
        "architectures/blocks.arch",
    ]));
    assert!(out.contains("resnet.arch: ok (13 networks)"), "{out}");
}

#[test]
fn input_errors_exit_one_and_show_every_file() {
    let out = archc()
        .args([
            "check",
            "tests/fixtures/bad/groups_do_not_divide.arch",
            "tests/fixtures/bad/unknown_block.arch",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("archc::shape::groups"), "{err}");
    assert!(err.contains("archc::resolve::unknown_name"), "{err}");
    assert!(err.contains("groups_do_not_divide.arch:5:11"), "{err}");
}

#[test]
fn bad_usage_exits_two() {
    // unknown subcommand, missing file, unknown network, malformed --input, bad format
    for args in [
        vec!["frobnicate"],
        vec!["report", "no/such/file.arch"],
        vec![
            "report",
            "architectures/resnet.arch",
            "--network",
            "resnet19",
        ],
        vec!["report", "architectures/resnet.arch", "--input", "3x0x32"],
        vec!["report", "architectures/resnet.arch", "--format", "yaml"],
        vec!["report", "architectures/resnet.arch", "--batch-size", "0"],
    ] {
        let out = archc().args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn unknown_network_lists_the_known_ones() {
    let out = archc()
        .args(["report", "architectures/cifar.arch", "-n", "cifar_resnet21"])
        .output()
        .unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cifar_resnet20"), "{err}");
}

#[test]
fn json_report_has_the_stable_fields() {
    let out = stdout(archc().args([
        "report",
        "architectures/resnet.arch",
        "--network",
        "resnet18,resnet50_tv",
        "--format",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    let r18 = &arr[0];
    assert_eq!(r18["network"], "resnet18");
    assert_eq!(r18["input"], serde_json::json!([3, 224, 224]));
    assert_eq!(r18["output"], serde_json::json!([1000]));
    assert_eq!(r18["params"], 11_689_512);
    assert_eq!(r18["buffers"], 9_600);
    assert_eq!(r18["macs"], 1_814_073_344u64);
    assert!(r18["flops"].as_u64().unwrap() > 2 * 1_814_073_344u64);
    let layers = r18["layers"].as_array().unwrap();
    assert!(layers.len() > 50);
    for l in layers {
        for key in ["name", "kind", "output", "params", "macs"] {
            assert!(l.get(key).is_some(), "layer lacks {key}: {l}");
        }
    }
    assert_eq!(layers[0]["name"], "conv1.conv1");
    assert_eq!(layers[0]["kind"], "conv");
    assert_eq!(layers[0]["output"], serde_json::json!([64, 112, 112]));
    assert_eq!(layers[0]["params"], 9408);
    assert_eq!(arr[1]["macs"], 4_089_184_256u64);
}

#[test]
fn json_without_network_reports_every_network_of_the_file() {
    let out = stdout(archc().args(["report", "architectures/cifar.arch", "-f", "json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let text = std::fs::read_to_string("architectures/cifar.arch").unwrap();
    let declared = text.lines().filter(|l| l.starts_with("network ")).count();
    assert_eq!(declared, 15);
    assert_eq!(v.as_array().unwrap().len(), declared);
}

#[test]
fn table_and_markdown_and_per_layer() {
    let t = stdout(archc().args(["report", "architectures/cifar.arch", "-n", "cifar_resnet20"]));
    assert!(t.contains("269,722"), "{t}");
    let p = stdout(archc().args([
        "report",
        "architectures/cifar.arch",
        "-n",
        "cifar_resnet20",
        "--per-layer",
    ]));
    assert!(p.contains("conv3_x.0.shortcut"), "{p}");
    assert!(p.contains("A: subsample /2, pad 16 zero channels"), "{p}");
    let m = stdout(archc().args([
        "report",
        "architectures/cifar.arch",
        "-n",
        "cifar_resnet20",
        "-f",
        "markdown",
    ]));
    assert!(m.starts_with("## cifar_resnet20"), "{m}");
    assert!(m.contains("| `conv2_x` |"), "{m}");
}

#[test]
fn batch_size_scales_activation_memory() {
    let one = stdout(archc().args([
        "report",
        "architectures/cifar.arch",
        "-n",
        "cifar_resnet20",
        "-f",
        "json",
    ]));
    let many = stdout(archc().args([
        "report",
        "architectures/cifar.arch",
        "-n",
        "cifar_resnet20",
        "-f",
        "json",
        "--batch-size",
        "128",
    ]));
    let a: serde_json::Value = serde_json::from_str(&one).unwrap();
    let b: serde_json::Value = serde_json::from_str(&many).unwrap();
    assert_eq!(
        a[0]["activation_bytes"].as_u64().unwrap() * 128,
        b[0]["activation_bytes"].as_u64().unwrap()
    );
    // Issue 23, item 8: MACs and FLOPs stay per sample, and the per-batch figures (torchinfo's
    // convention) are given beside them.
    assert_eq!(a[0]["macs"], b[0]["macs"]);
    assert_eq!(
        b[0]["macs_per_batch"].as_u64().unwrap(),
        128 * a[0]["macs"].as_u64().unwrap()
    );
    assert_eq!(
        b[0]["flops_per_batch"].as_u64().unwrap(),
        128 * a[0]["flops"].as_u64().unwrap()
    );
    let table = stdout(archc().args([
        "report",
        "architectures/cifar.arch",
        "-n",
        "cifar_resnet20",
        "--batch-size",
        "128",
    ]));
    // 40,551,040 MACs per sample x 128.
    assert!(
        table.contains("at batch 128") && table.contains("5,190,533,120"),
        "{table}"
    );
}

#[test]
fn table1_prints_the_paper_layout() {
    let out = stdout(archc().args([
        "table",
        "architectures/resnet.arch",
        "--networks",
        "resnet18,resnet34,resnet50,resnet101,resnet152",
    ]));
    assert!(
        out.starts_with("layer name  output size  resnet18"),
        "{out}"
    );
    assert!(out.contains("112×112"));
    assert!(out.contains("7×7, 64, stride 2"));
    assert!(out.contains("3×3 max pool, stride 2"));
    assert!(out.contains("×36"), "{out}");
    let flops = out.lines().last().unwrap();
    for f in ["1.81×10⁹", "3.66×10⁹", "3.86×10⁹", "7.57×10⁹", "11.28×10⁹"] {
        assert!(flops.contains(f), "{flops}");
    }
}

#[test]
fn overrides_from_the_command_line() {
    let out = stdout(archc().args([
        "report",
        "architectures/resnet.arch",
        "-n",
        "resnet18",
        "--input",
        "3x32x32",
        "--classes",
        "100",
        "-f",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["output"], serde_json::json!([100]));
    assert_eq!(v[0]["params"], 11_689_512 - 513_000 + 51_300);
}

#[test]
fn classes_override_needs_a_declared_class_count() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("n.arch");
    std::fs::write(
        &f,
        "network n {\n    input 3x32x32\n    conv1 conv 3x3, 16\n    head avgpool, fc 10\n}\n",
    )
    .unwrap();
    let out = archc()
        .args(["check", f.to_str().unwrap(), "--classes", "5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("archc::network::no_classes"));
}

#[test]
fn an_input_too_small_for_the_network_is_a_diagnostic() {
    let out = archc()
        .args([
            "report",
            "architectures/vgg.arch",
            "-n",
            "vgg16",
            "--input",
            "3x16x16",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("archc::shape::empty_map"));
}

#[test]
fn lower_prints_text_and_json() {
    let text = stdout(archc().args(["lower", "architectures/resnet.arch", "-n", "resnet18"]));
    assert!(
        text.contains("%24 layer2.0.downsample.0 = Conv2d channels=[64, 128]"),
        "{text}"
    );
    let json = stdout(archc().args([
        "lower",
        "architectures/cifar.arch",
        "-n",
        "cifar_resnet20",
        "-f",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["params"], 269_722);
    assert_eq!(v["nodes"][1]["op"]["kind"], "Conv2d");
    let out = archc()
        .args(["lower", "architectures/resnet.arch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--network is required");
}

#[test]
fn diff_marks_the_stages_that_differ() {
    let out = stdout(archc().args([
        "diff",
        "architectures/resnet.arch:plain34",
        "architectures/resnet.arch:resnet34",
    ]));
    let line = |stage: &str| {
        out.lines()
            .find(|l| l.split_whitespace().any(|w| w == stage))
            .unwrap_or_else(|| panic!("no {stage} row:\n{out}"))
            .to_string()
    };
    assert!(!line("conv2_x").starts_with('*'), "{out}");
    assert!(line("conv3_x").starts_with('*'), "{out}");
    assert!(line("total").contains("+173,824"), "{out}");
    let same = stdout(archc().args([
        "diff",
        "resnet34",
        "resnet34_b",
        "--file",
        "architectures/resnet.arch",
    ]));
    assert!(!same.lines().any(|l| l.starts_with('*')), "{same}");
    let out = archc()
        .args(["diff", "resnet34", "resnet50"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "bare names need --file");
}

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let out = stdout(archc().args(["completions", shell]));
        assert!(
            out.contains("report") && out.contains("per-layer"),
            "{shell}"
        );
    }
    let man = stdout(archc().arg("man"));
    assert!(man.contains(".TH archc 1"), "{man}");
    assert!(man.contains("report"));
}

/// Code generation is Burn API text, so it is the runtime crate's: a build without the runtime
/// says so (tests/layers.rs checks that message).
#[cfg(feature = "runtime")]
#[test]
fn codegen_writes_a_burn_module() {
    let out = stdout(archc().args([
        "codegen",
        "architectures/cifar.arch",
        "-n",
        "cifar_resnet20",
    ]));
    assert!(
        out.contains("#[derive(Module, Debug)]\npub struct CifarResnet20 {"),
        "{out}"
    );
    assert!(out.contains("pub fn forward(&self, x0: Tensor<4>) -> Tensor<2>"));
    // The committed copy that runtime/tests/codegen.rs compiles is today's output.
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("runtime/tests/generated/cifar_resnet20.rs"),
    )
    .unwrap();
    assert_eq!(out, committed);
}

/// `diff` writes each delta in its columns' units (mult-adds as `25.7 M`, as the MACs columns
/// are, not `25,690,112`) and shows each stage's repeat count as `archc table` does (`×3`).
#[test]
fn diff_deltas_use_their_columns_units_and_show_repeat_counts() {
    let out = stdout(archc().args([
        "diff",
        "resnet34",
        "resnet50",
        "--file",
        "architectures/resnet.arch",
    ]));
    let cells = |stage: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split_whitespace().any(|w| w == stage))
            .unwrap_or_else(|| panic!("no {stage} row:\n{out}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let conv2 = cells("conv2_x");
    assert_eq!(conv2[..4], ["*", "conv2_x", "×3", "×3"], "{out}");
    assert!(conv2.ends_with(&["-25.7".into(), "M".into()]), "{out}");
    let conv4 = cells("conv4_x");
    assert_eq!(conv4[2..4], ["×6", "×6"], "{out}");
    assert!(
        cells("total").ends_with(&["+194.2".into(), "M".into()]),
        "{out}"
    );
    assert!(cells("total").contains(&"+3,759,360".to_string()), "{out}");
    // A stage of single layers has no repeat count; a changed count marks the row.
    assert_eq!(cells("conv1")[..2], ["conv1", "64x112x112"], "{out}");
    let depth = stdout(archc().args([
        "diff",
        "resnet18",
        "resnet34",
        "--file",
        "architectures/resnet.arch",
    ]));
    let conv3 = depth
        .lines()
        .find(|l| l.contains("conv3_x"))
        .unwrap_or_else(|| panic!("{depth}"));
    assert!(
        conv3.starts_with('*') && conv3.contains("×2") && conv3.contains("×4"),
        "{depth}"
    );
}
