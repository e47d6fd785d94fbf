//! The op units seen from outside: `archc layers` lists every layer kind of the grammar, the
//! new activations compile in all three forms (a layer, a conv's or fc's `act:`, the `act`
//! setting) and lower to their own nodes, and docs/diagnostics.md has a section for every
//! diagnostic code and no section without one.

use std::collections::BTreeSet;
use std::path::Path;

use archc_compiler::lower::{lower, to_text, LoweredOp};
use archc_compiler::{compile_str, Overrides};
use archc_grammar::keywords::LAYER_KINDS;
use assert_cmd::Command;
use serde_json::Value;

fn archc() -> Command {
    let mut c = Command::cargo_bin("archc").unwrap();
    c.env("NO_COLOR", "1");
    c
}

#[test]
fn layers_json_lists_every_kind_of_the_grammar() {
    let out = archc()
        .args(["layers", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, LAYER_KINDS);
    for u in v.as_array().unwrap() {
        for field in [
            "summary",
            "example",
            "shape_rule",
            "cost_rule",
            "training_rule",
        ] {
            assert!(
                u[field].as_str().is_some_and(|s| !s.is_empty()),
                "{}: {field}",
                u["name"]
            );
        }
    }
    let conv = &v[0];
    assert_eq!(conv["name"], "conv");
    assert_eq!(conv["positional"][0]["name"], "kernel");
    assert_eq!(conv["defaults"]["stride"], "1");
}

#[test]
fn layers_prints_one_kind_or_names_the_kinds() {
    let out = archc().args(["layers", "leaky_relu"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("leaky_relu: max(x, 0) + slope * min(x, 0)"),
        "{text}"
    );
    assert!(text.contains("slope       default: 0.01"), "{text}");
    let out = archc().args(["layers", "sigmod"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("did you mean `sigmoid`?") && err.contains("prelu"),
        "{err}"
    );
}

/// The lowered text of the one network of `src`.
fn lowered(src: &str) -> (archc_compiler::lower::LoweredGraph, String) {
    let (_, r) = compile_str("t.arch", src, &Overrides::default());
    let nets = r.unwrap_or_else(|d| panic!("{src}\n{d:?}"));
    let l = lower(&nets[0]);
    let t = to_text(&l);
    (l, t)
}

#[test]
fn every_activation_is_a_layer_an_argument_and_a_setting() {
    let acts = [
        ("relu", "Relu"),
        ("relu6", "Relu6"),
        ("sigmoid", "Sigmoid"),
        ("hardsigmoid", "HardSigmoid"),
        ("silu", "Silu"),
        ("hardswish", "HardSwish"),
        ("gelu", "Gelu"),
        ("tanh", "Tanh"),
        ("leaky_relu", "LeakyRelu"),
        ("prelu", "PRelu"),
    ];
    for (word, kind) in acts {
        // As the setting (after every conv), as a conv's and an fc's argument, and as a layer.
        let src = format!(
            "network n {{\n    input 3x8x8\n    act {word}\n    a conv 3x3, 4\n    b conv 3x3, 6, act: {word}\n    c {word}\n    head avgpool, fc 5, act: {word}, fc 2\n}}\n"
        );
        let (l, text) = lowered(&src);
        let n = l.nodes.iter().filter(|n| n.op.kind() == kind).count();
        assert_eq!(n, 4, "{word}: four {kind} nodes\n{text}");
        // PReLU learns one slope per channel: 4 + 6 + 6 + 5 more parameters.
        let prelu: u64 = l
            .nodes
            .iter()
            .filter(|n| matches!(n.op, LoweredOp::PRelu { .. }))
            .map(|n| n.op.params())
            .sum();
        assert_eq!(prelu, if word == "prelu" { 4 + 6 + 6 + 5 } else { 0 });
    }
}

#[test]
fn activation_arguments_reach_the_lowered_graph() {
    let (_, text) = lowered(
        "network n {\n    input 3x8x8\n    a conv 3x3, 4, act: none\n    b leaky_relu 0.2\n    c gelu approximate: tanh\n    d gelu\n    head avgpool, fc 2\n}\n",
    );
    assert!(text.contains("= LeakyRelu slope=0.2 ("), "{text}");
    assert!(text.contains("= Gelu approximate=tanh ("), "{text}");
    assert!(text.contains(" d.gelu1 = Gelu (%"), "{text}");
}

#[test]
fn batch_norm_takes_eps_and_momentum() {
    let (_, text) = lowered(
        "network n {\n    input 3x8x8\n    a conv 3x3, 4, norm: none, act: none\n    b bn eps: 0.001, momentum: 0.01\n    head avgpool, fc 2\n}\n",
    );
    assert!(
        text.contains("num_features=4 epsilon=1e-3 momentum=0.01"),
        "{text}"
    );
    let (_, r) = compile_str(
        "t.arch",
        "network n {\n    input 3x8x8\n    b bn momentum: 2\n    head avgpool, fc 2\n}\n",
        &Overrides::default(),
    );
    assert!(r.is_err(), "a momentum above 1 is an error");
}

#[test]
fn every_diagnostic_code_has_a_section_in_the_docs_and_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut codes = BTreeSet::new();
    for file in ["compiler/src/diag.rs", "grammar/src/error.rs"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for part in text.split("code(archc::").skip(1) {
            let code: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            codes.insert(format!("archc::{code}"));
        }
    }
    assert!(codes.len() >= 30, "{codes:?}");
    let docs = std::fs::read_to_string(root.join("docs/diagnostics.md")).unwrap();
    let sections: BTreeSet<String> = docs
        .lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| l.strip_suffix('`'))
        .map(String::from)
        .collect();
    let undocumented: Vec<_> = codes.difference(&sections).collect();
    let stale: Vec<_> = sections.difference(&codes).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "codes without a section in docs/diagnostics.md: {undocumented:?}; sections without a code: {stale:?}"
    );
}

#[cfg(not(feature = "runtime"))]
#[test]
fn codegen_without_the_runtime_says_so() {
    let out = archc()
        .args([
            "codegen",
            "architectures/cifar.arch",
            "-n",
            "cifar_resnet20",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("needs the runtime"));
}

#[test]
fn norms_maxout_drop_path_and_shuffle_compile_lower_and_count() {
    let (l, text) = lowered(
        "network n {\n    input 3x8x8\n    a conv 3x3, 12, norm: none\n    b layernorm\n    c groupnorm 3, eps: 0.001\n    d channel_shuffle 4\n    e drop_path 0.1\n    f maxout 3\n    head avgpool, fc 6, maxout 2, layernorm\n}\n",
    );
    for line in [
        "b.layernorm1 = LayerNorm num_features=12 epsilon=1e-5",
        "c.groupnorm1 = GroupNorm num_groups=3 num_channels=12 epsilon=1e-3",
        "d.channel_shuffle1 = ChannelShuffle groups=4",
        "e.drop_path1 = DropPath prob=0.1",
        "f.maxout1 = Maxout pieces=3 (%6) -> [4, 8, 8]",
        "head.maxout1 = Maxout pieces=2 (%10) -> [3]",
        "head.layernorm1 = LayerNorm num_features=3 epsilon=1e-5 (%11) -> [3]",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    // Norms: a scale and a shift per channel, counted once (the conv has a bias: norm none).
    let conv = 12 * 3 * 9 + 12;
    let norms = 2 * 12 + 2 * 12 + 2 * 3;
    let fc = 4 * 6 + 6;
    assert_eq!(l.params, (conv + norms + fc) as u64, "{text}");
    for (src, what) in [
        ("groupnorm 5", "Groups { groups: 5"),
        ("channel_shuffle 5", "Groups { groups: 5"),
        ("maxout 5", "Groups { groups: 5"),
        ("drop_path 1.5", "Probability"),
    ] {
        rejects(src, what);
    }
}

/// `spp`: C·ΣN² features from any map, the levels lowered in order; bad levels and a flat
/// input are diagnostics.
#[test]
fn spp_compiles_lowers_and_counts() {
    let (l, text) =
        lowered("network n {\n    input 8x14x14\n    a spp 7, 3, 2, 1\n    head fc 5\n}\n");
    assert!(
        text.contains("a.spp1 = Spp levels=4 level1=7 level2=3 level3=2 level4=1"),
        "{text}"
    );
    assert_eq!(l.params, (8 * 63 * 5 + 5) as u64, "{text}");
    for (src, what) in [
        ("spp 0, 1", "NonPositive"),
        ("spp 2.5", "BadValue"),
        ("spp 256", "255"),
        ("spp 1, 1, 1, 1, 1, 1, 1", "LayerArguments"),
        ("flatten, spp 2", "NeedsMap"),
    ] {
        rejects(src, what);
    }
}

/// Codegen writes unit ops too (it refused them before issue 14): maxout as a function of the
/// generated file (runtime/tests/codegen_logits.rs compiles such a file and compares logits).
#[cfg(feature = "runtime")]
#[test]
fn codegen_writes_unit_ops() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("n.arch");
    std::fs::write(
        &f,
        "network n {\n    input 3x8x8\n    a conv 3x3, 4\n    b maxout 2\n}\n",
    )
    .unwrap();
    let out = archc()
        .arg("codegen")
        .arg(&f)
        .args(["-n", "n"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let code = String::from_utf8(out.stdout).unwrap();
    assert!(code.contains("= maxout(x"), "{code}");
    assert!(
        code.contains("\nfn maxout(x: Tensor<4>, pieces: usize)"),
        "{code}"
    );
}

/// Issue 23, item 5: `archc table` showed `groups` for convs inside blocks but not for convs
/// written on a stage line (MnasNet's stem: `3×3, 32, stride 2, 3×3, 32, 1×1, 16`, the
/// depthwise groups lost).
#[test]
fn table_shows_the_groups_of_a_conv_on_a_stage_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mnas.arch");
    std::fs::write(
        &f,
        "network mnas_stem {\n    input 3x224x224\n    stem conv 3x3, 32, stride: 2, conv 3x3, 32, groups: 32, conv 1x1, 16\n    head avgpool, fc 10\n}\n",
    )
    .unwrap();
    let out = archc().arg("table").arg(&f).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("3×3, 32, groups 32") || text.contains("3x3, 32, groups 32"),
        "{text}"
    );
}

/// Issue 23, item 17: `train --help` and `eval --help` list every `--data` kind the runtime
/// reads (textures was missing).
#[test]
fn train_and_eval_help_list_every_data_kind() {
    for cmd in ["train", "eval"] {
        let out = archc().args([cmd, "--help"]).output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        for kind in [
            "cifar10:DIR",
            "cifar100:DIR",
            "mnist:DIR",
            "folder:DIR",
            "synthetic[:N]",
            "textures[:N]",
        ] {
            assert!(text.contains(kind), "{cmd} --help lacks {kind}:\n{text}");
        }
    }
}

/// Stage `a {src}` on a 12x4x4 input is refused with an error whose debug text holds `what`.
fn rejects(src: &str, what: &str) {
    let (_, r) = compile_str(
        "t.arch",
        &format!("network n {{\n    input 12x4x4\n    a {src}\n}}\n"),
        &Overrides::default(),
    );
    let d = r.expect_err(src);
    assert!(format!("{d:?}").contains(what), "{src}: {d:?}");
}
