//! `archc graph`: networks drawn as the paper's Figure 3. The figure model is checked against
//! what the networks are (blocks, shortcut options, repeats); the DOT text of a small network is
//! a reviewed snapshot; the SVG is well-formed XML with one box per drawn layer.

use archc_compiler::report::figure::{self, ArcStyle, Figure, ItemKind};
use archc_compiler::{build_network, load_path, Overrides, TypedGraph};

fn net(file: &str, name: &str) -> TypedGraph {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("architectures")
        .join(file);
    let (sources, prog) = load_path(&path);
    let prog = match prog {
        Ok(p) => p,
        Err(archc_compiler::LoadError::Diagnostics(d)) => panic!("{}", d.render_plain(&sources)),
        Err(e) => panic!("{e:?}"),
    };
    build_network(&prog, name, &Overrides::default())
        .unwrap_or_else(|d| panic!("{name}: {}", d.render_plain(&sources)))
}

fn layers(f: &Figure) -> Vec<&str> {
    f.items
        .iter()
        .filter(|i| i.kind == ItemKind::Layer)
        .map(|i| i.label.as_str())
        .collect()
}

fn dotted(f: &Figure) -> usize {
    f.arcs
        .iter()
        .filter(|a| a.style == ArcStyle::Dotted)
        .count()
}

#[test]
fn resnet34_expanded_has_every_block_and_its_shortcut() {
    let f = figure::figure(&net("resnet.arch", "resnet34"), true);
    // 33 convolutions (conv1 and 16 blocks of two), the max pool, the average pool, the fc.
    let l = layers(&f);
    assert_eq!(l.iter().filter(|s| s.contains(" conv,")).count(), 33);
    assert_eq!(l.first(), Some(&"7×7 conv, 64, /2"));
    assert_eq!(l[1], "3×3 max pool, /2");
    assert_eq!(&l[l.len() - 2..], &["avg pool", "fc 1000"]);
    assert_eq!(f.arcs.len(), 16, "one shortcut per block");
    assert_eq!(dotted(&f), 3, "the three stages that change the shape");
    for a in f.arcs.iter().filter(|a| a.style == ArcStyle::Dotted) {
        assert!(
            a.label.as_deref().unwrap().starts_with("1×1 conv, "),
            "{a:?}"
        );
        assert!(a.label.as_deref().unwrap().ends_with(", /2"), "{a:?}");
    }
    for a in &f.arcs {
        assert!(a.from < a.to);
        assert!(matches!(f.items[a.to].kind, ItemKind::Merge { .. }));
    }
    assert!(f.groups.is_empty());
    assert_eq!(f.params, 21_797_672);
}

#[test]
fn collapsing_keeps_the_first_repetition_of_a_stage_apart() {
    let f = figure::figure(&net("resnet.arch", "resnet34"), false);
    // conv2_x: 3 identical blocks; conv3_x..conv5_x: a strided first block, then 3, 5 and 2.
    let repeats: Vec<u64> = f.groups.iter().map(|g| g.repeat).collect();
    assert_eq!(repeats, vec![3, 3, 5, 2]);
    assert_eq!(f.arcs.len(), 7);
    assert_eq!(dotted(&f), 3);
    // Collapsed or not, the same network: the drawn blocks times their repeats give 16.
    let merges_in_groups: u64 = f
        .groups
        .iter()
        .map(|g| {
            let m = f.items[g.first..=g.last]
                .iter()
                .filter(|i| matches!(i.kind, ItemKind::Merge { .. }))
                .count() as u64;
            m * g.repeat
        })
        .sum();
    let merges_alone = f
        .items
        .iter()
        .enumerate()
        .filter(|(k, i)| {
            matches!(i.kind, ItemKind::Merge { .. })
                && !f.groups.iter().any(|g| (g.first..=g.last).contains(k))
        })
        .count() as u64;
    assert_eq!(merges_in_groups + merges_alone, 16);
}

#[test]
fn plain_networks_have_no_shortcuts() {
    for n in ["plain18", "plain34"] {
        let f = figure::figure(&net("resnet.arch", n), true);
        assert!(f.arcs.is_empty(), "{n}");
        assert!(!f
            .items
            .iter()
            .any(|i| matches!(i.kind, ItemKind::Merge { .. })));
    }
}

#[test]
fn shortcut_options_are_drawn_as_they_compute() {
    // A: zero-padding where the shape changes (dotted), identity elsewhere.
    let a = figure::figure(&net("cifar.arch", "cifar_resnet20"), true);
    assert_eq!(a.arcs.len(), 9);
    assert_eq!(dotted(&a), 2);
    for arc in &a.arcs {
        match arc.style {
            ArcStyle::Dotted => assert_eq!(arc.label.as_deref(), Some("zero-pad, /2")),
            ArcStyle::Solid => assert_eq!(arc.label, None),
        }
    }
    // C: a projection on every block; solid where it keeps the shape.
    let c = figure::figure(&net("resnet.arch", "resnet34_c"), true);
    assert_eq!(c.arcs.len(), 16);
    assert_eq!(dotted(&c), 3);
    assert!(c.arcs.iter().all(|a| a
        .label
        .as_deref()
        .is_some_and(|l| l.starts_with("1×1 conv"))));
}

#[test]
fn bottlenecks_grouped_convs_and_inverted_residuals() {
    let r = figure::figure(&net("resnet.arch", "resnet50"), true);
    assert_eq!(r.arcs.len(), 16);
    // conv2_x's first block projects 64 to 256 channels without a stride.
    assert_eq!(r.arcs[0].label.as_deref(), Some("1×1 conv, 256"));
    assert_eq!(r.arcs[0].style, ArcStyle::Dotted);
    let x = figure::figure(&net("resnext.arch", "resnext50_32x4d"), false);
    assert!(
        layers(&x).contains(&"3×3 conv, 128, 32 groups"),
        "{:?}",
        layers(&x)
    );
    // MobileNetV2: residual connections only where stride is 1 and channels match (10 of 17).
    let m = figure::figure(&net("mobilenet.arch", "mobilenet_v2"), true);
    assert_eq!(m.arcs.len(), 10);
    assert_eq!(dotted(&m), 0);
    assert!(layers(&m).iter().any(|l| l.starts_with("3×3 dw conv")));
}

#[test]
fn highway_gates_are_drawn_with_their_gate() {
    let h = figure::figure(&net("highway.arch", "cifar_highway19"), true);
    assert!(!h.arcs.is_empty());
    assert!(h.arcs.iter().all(|a| a.label.as_deref() == Some("gate")));
    assert!(h
        .items
        .iter()
        .any(|i| i.kind == ItemKind::Merge { highway: true }));
}

#[test]
fn dot_of_cifar_resnet20() {
    let f = figure::figure(&net("cifar.arch", "cifar_resnet20"), false);
    insta::assert_snapshot!(figure::dot(&f));
}

#[test]
fn svg_is_well_formed_with_a_box_per_layer() {
    for (file, n) in [
        ("resnet.arch", "resnet34"),
        ("resnet.arch", "plain34"),
        ("vgg.arch", "vgg19"),
        ("mlp.arch", "mlp_res20"),
    ] {
        for expand in [false, true] {
            let f = figure::figure(&net(file, n), expand);
            let svg = figure::svg(&f);
            let doc =
                roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{n}: not XML: {e}"));
            let root = doc.root_element();
            assert_eq!(root.tag_name().name(), "svg");
            let count = |tag: &str| {
                doc.descendants()
                    .filter(|d| d.tag_name().name() == tag)
                    .count()
            };
            let boxes = f
                .items
                .iter()
                .filter(|i| !matches!(i.kind, ItemKind::Merge { .. }))
                .count();
            // One rect per box plus the background.
            assert_eq!(count("rect"), boxes + 1, "{n}");
            let merges = f.items.len() - boxes;
            assert_eq!(count("circle"), merges, "{n}");
            let dashed = doc
                .descendants()
                .filter(|d| d.attribute("stroke-dasharray").is_some())
                .count();
            assert_eq!(dashed, dotted(&f), "{n}");
            let w: f64 = root.attribute("width").unwrap().parse().unwrap();
            let h: f64 = root.attribute("height").unwrap().parse().unwrap();
            assert!(w > 300.0 && h > 40.0 * boxes as f64, "{n}: {w}x{h}");
        }
    }
}

#[test]
fn cli_writes_the_picture_and_refuses_an_unknown_network() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r34.svg");
    let zoo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("architectures");
    assert_cmd::Command::cargo_bin("archc")
        .unwrap()
        .arg("graph")
        .arg(zoo.join("resnet.arch"))
        .args(["--network", "resnet34", "--out"])
        .arg(&out)
        .assert()
        .success();
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    let dot = assert_cmd::Command::cargo_bin("archc")
        .unwrap()
        .arg("graph")
        .arg(zoo.join("resnet.arch"))
        .args(["-n", "resnet34", "--format", "dot", "--expand"])
        .assert()
        .success();
    let text = String::from_utf8(dot.get_output().stdout.clone()).unwrap();
    assert!(text.starts_with("digraph \"resnet34\""));
    assert_eq!(text.matches("style=dotted").count(), 3);
    let bad = assert_cmd::Command::cargo_bin("archc")
        .unwrap()
        .arg("graph")
        .arg(zoo.join("resnet.arch"))
        .args(["-n", "resnet35", "--out"])
        .arg(dir.path().join("x.svg"))
        .assert()
        .code(2);
    let err = String::from_utf8(bad.get_output().stderr.clone()).unwrap();
    assert!(err.contains("resnet35"), "{err}");
    assert!(!dir.path().join("x.svg").exists());
}
