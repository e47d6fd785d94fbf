//! `archc graph`: networks drawn as the paper's Figure 3. The figure model is checked against
//! what the networks are (blocks, shortcut options, repeats, branches and outputs); the DOT text
//! of a small network and the DOT and SVG of a small branching one are reviewed snapshots; the
//! SVG is well-formed XML with one box per drawn layer, branches side by side.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use archc_compiler::graph::MergeKind;
use archc_compiler::report::figure::{self, ArcStyle, Figure, ItemKind};
use archc_compiler::{build_network, compile_str, load_path, Overrides, TypedGraph};

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

/// A small Inception-like network: a three-branch module twice (drawn once, ×2), an auxiliary
/// head from it, a squeeze-and-excitation gate and the head.
const TINY: &str = "\
block inception(c1, c3r, c3, pool) {
    concat {
        b1 conv 1x1, c1
        b2 conv 1x1, c3r, conv 3x3, c3
        b3 maxpool 3x3, stride: 1, padding: 1, conv 1x1, pool
    }
}

network tiny {
    input   3x32x32
    classes 10
    outputs head, aux: 0.3
    stem    conv 3x3, 32
    mixed   inception(8, 8, 16, 8) x 2
    aux     from mixed, avgpool, fc classes
    se      mul {
                scale
                excite avgpool, fc 8, act: relu, fc 32, act: sigmoid
            }
    head    avgpool, fc classes
}
";

fn tiny() -> TypedGraph {
    let (sources, r) = compile_str("tiny.arch", TINY, &Overrides::default());
    match r {
        Ok(mut n) => n.remove(0),
        Err(d) => panic!("{}", d.render_plain(&sources)),
    }
}

fn item(f: &Figure, label: &str) -> usize {
    f.items
        .iter()
        .position(|i| i.label == label)
        .unwrap_or_else(|| panic!("no item {label}"))
}

#[test]
fn branches_joins_and_outputs_in_the_model() {
    let f = figure::figure(&tiny(), true);
    let joins: Vec<usize> = (0..f.items.len())
        .filter(|&i| matches!(f.items[i].kind, ItemKind::Join { .. }))
        .collect();
    assert_eq!(joins.len(), 3, "two concats and the gate's ×");
    // Each concat reads its three branches' ends; every branch starts at the module's input.
    let stem = item(&f, "3×3 conv, 32");
    let first = &f.items[joins[0]];
    assert_eq!(
        first.kind,
        ItemKind::Join {
            kind: MergeKind::Concat
        }
    );
    assert_eq!(first.label, "concat");
    assert_eq!(first.inputs.len(), 3);
    let heads: Vec<usize> = (0..f.items.len())
        .filter(|&i| f.items[i].inputs == [stem])
        .collect();
    assert_eq!(heads.len(), 3, "{heads:?}");
    // The gate: the map itself (the identity branch) and the excitation's end, joined by ×.
    let gate = &f.items[joins[2]];
    assert_eq!(
        gate.kind,
        ItemKind::Join {
            kind: MergeKind::Mul
        }
    );
    assert_eq!(gate.label, "×");
    assert_eq!(gate.inputs, vec![joins[1], item(&f, "fc 32")]);
    assert!(f.arcs.is_empty(), "a merge of branches is no shortcut");
    // The auxiliary head hangs off the second module's concat; both outputs are marked.
    let aux = f
        .items
        .iter()
        .position(|i| i.inputs == [joins[1]] && i.stage == f.items[joins[1]].stage.map(|s| s + 1))
        .unwrap();
    assert_eq!(f.items[aux].label, "avg pool");
    let notes: Vec<(usize, String)> = f.outputs.iter().map(|o| (o.item, o.note())).collect();
    assert_eq!(
        notes,
        vec![
            (f.items.len() - 1, "output: head".to_string()),
            (aux + 1, "output: aux (loss ×0.3)".to_string())
        ]
    );
    assert_eq!(f.output, f.items.len() - 1);
    // Collapsed: the two identical modules are drawn once.
    let c = figure::figure(&tiny(), false);
    assert_eq!(c.groups.len(), 1);
    assert_eq!(c.groups[0].repeat, 2);
    assert_eq!(c.items.len(), f.items.len() - 6);
}

#[test]
fn dot_of_a_branching_network() {
    let f = figure::figure(&tiny(), false);
    insta::assert_snapshot!(figure::dot(&f));
}

#[test]
fn svg_of_a_branching_network() {
    let f = figure::figure(&tiny(), false);
    insta::assert_snapshot!(figure::svg(&f));
}

/// DOT's node labels by id (`n7` → `1×1 conv, 96\n96×28×28`) and its edges.
fn parse_dot(dot: &str) -> (HashMap<String, String>, Vec<(String, String)>) {
    let mut labels = HashMap::new();
    let mut edges = Vec::new();
    for line in dot.lines().map(str::trim) {
        if let Some((from, rest)) = line.split_once(" -> ") {
            let to = rest.split_whitespace().next().unwrap();
            edges.push((from.to_string(), to.to_string()));
        } else if let Some((id, rest)) = line.split_once(" [label=\"") {
            let label = rest.split('"').next().unwrap();
            labels.insert(id.to_string(), label.to_string());
        }
    }
    (labels, edges)
}

#[test]
fn googlenet_dot_draws_inception3a_as_four_branches_from_one_item() {
    let f = figure::figure(&net("googlenet.arch", "googlenet"), false);
    let (labels, edges) = parse_dot(&figure::dot(&f));
    let heads = [
        "1×1 conv, 64\\n64×28×28",
        "1×1 conv, 96\\n96×28×28",
        "1×1 conv, 16\\n16×28×28",
        "3×3 max pool\\n192×28×28",
    ];
    // maxpool2, the item inception3a reads, has an edge to each of its four branch heads.
    let src: Vec<&String> = labels
        .iter()
        .filter(|(_, l)| l.as_str() == "3×3 max pool, /2\\n192×28×28")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(src.len(), 1);
    let mut to: Vec<&str> = edges
        .iter()
        .filter(|e| &e.0 == src[0])
        .map(|e| labels[&e.1].as_str())
        .collect();
    to.sort();
    let mut want = heads.to_vec();
    want.sort();
    assert_eq!(to, want);
    // The concat reads the four branches' ends.
    let concat = labels
        .iter()
        .find(|(_, l)| l.as_str() == "concat\\n256×28×28")
        .map(|(id, _)| id.clone())
        .unwrap();
    assert_eq!(edges.iter().filter(|e| e.1 == concat).count(), 4);
    // The auxiliary heads hang off inception4a's and inception4d's concats.
    let aux: Vec<&String> = labels
        .iter()
        .filter(|(_, l)| l.starts_with("avg pool to 4×4"))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(aux.len(), 2);
    for a in aux {
        let from: Vec<&String> = edges.iter().filter(|e| &e.1 == a).map(|e| &e.0).collect();
        assert_eq!(from.len(), 1);
        assert!(
            labels[from[0]].starts_with("concat\\n"),
            "{}",
            labels[from[0]]
        );
    }
    assert!(labels
        .values()
        .any(|l| l.ends_with("output: aux1 (loss ×0.3)")));
}

#[test]
fn googlenet_svg_places_inception3a_branches_side_by_side() {
    let f = figure::figure(&net("googlenet.arch", "googlenet"), false);
    let svg = figure::svg(&f);
    let doc = roxmltree::Document::parse(&svg).unwrap();
    // Layer labels by their y: (x, text).
    let mut rows: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for t in doc
        .descendants()
        .filter(|d| d.tag_name().name() == "text" && d.attribute("font-size") == Some("12"))
    {
        rows.entry(t.attribute("y").unwrap().to_string())
            .or_default()
            .push((
                t.attribute("x").unwrap().to_string(),
                t.text().unwrap().to_string(),
            ));
    }
    let heads = [
        "1×1 conv, 64",
        "1×1 conv, 96",
        "1×1 conv, 16",
        "3×3 max pool",
    ];
    let row = rows
        .values()
        .find(|r| heads.iter().all(|h| r.iter().any(|(_, t)| t == h)))
        .expect("a row with inception3a's four branch heads");
    let xs: BTreeSet<&str> = heads
        .iter()
        .map(|h| row.iter().find(|(_, t)| t == h).unwrap().0.as_str())
        .collect();
    assert_eq!(xs.len(), 4, "{row:?}");
    // In branch order, left to right.
    let x: Vec<f64> = heads
        .iter()
        .map(|h| row.iter().find(|(_, t)| t == h).unwrap().0.parse().unwrap())
        .collect();
    assert!(x.windows(2).all(|w| w[0] < w[1]), "{x:?}");
}

#[test]
fn a_split_starts_at_one_point_and_identical_units_collapse() {
    let e = figure::figure(&net("shufflenet.arch", "shufflenet_v2_x1_0"), true);
    let splits: Vec<usize> = (0..e.items.len())
        .filter(|&i| e.items[i].kind == ItemKind::Split { parts: 2 })
        .collect();
    assert_eq!(splits.len(), 3 + 7 + 3, "one split point per unit");
    for &s in &splits {
        assert_eq!(e.items[s].label, "split");
        // Its concat reads the split itself (the identity half) and the conv path's end.
        let concat = (s..e.items.len())
            .find(|&i| matches!(e.items[i].kind, ItemKind::Join { .. }))
            .unwrap();
        assert_eq!(e.items[concat].inputs.len(), 2);
        assert_eq!(e.items[concat].inputs[0], s);
        assert_eq!(e.items[concat].label, "concat");
    }
    let c = figure::figure(&net("shufflenet.arch", "shufflenet_v2_x1_0"), false);
    let repeats: Vec<u64> = c.groups.iter().map(|g| g.repeat).collect();
    assert_eq!(repeats, vec![3, 7, 3]);
    // Dense layers' outputs grow by k channels each, so they draw differently and stay apart.
    let d = figure::figure(&net("densenet.arch", "densenet121"), false);
    let dense = d
        .items
        .iter()
        .filter(|i| {
            matches!(
                i.kind,
                ItemKind::Join {
                    kind: MergeKind::Concat
                }
            )
        })
        .count();
    assert_eq!(dense, 6 + 12 + 24 + 16);
}

#[test]
fn branching_svgs_are_well_formed_and_never_overlap() {
    for (file, n) in [
        ("googlenet.arch", "googlenet"),
        ("inception.arch", "inception_v3"),
        ("densenet.arch", "densenet121"),
        ("shufflenet.arch", "shufflenet_v2_x1_0"),
        ("squeezenet.arch", "squeezenet1_1"),
        ("senet.arch", "se_resnet50"),
        ("mobilenet_v3.arch", "mobilenet_v3_small"),
    ] {
        for expand in [false, true] {
            let f = figure::figure(&net(file, n), expand);
            let lay = figure::layout(&f);
            let mut cells = BTreeSet::new();
            for (i, it) in f.items.iter().enumerate() {
                assert!(
                    cells.insert((lay.row[i], lay.lane[i])),
                    "{n}: two items at one place"
                );
                for &j in &it.inputs {
                    assert!(lay.row[j] < lay.row[i], "{n}: an input below its reader");
                }
            }
            let svg = figure::svg(&f);
            let doc =
                roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{n}: not XML: {e}"));
            let count = |tag: &str| {
                doc.descendants()
                    .filter(|d| d.tag_name().name() == tag)
                    .count()
            };
            let circles = f
                .items
                .iter()
                .filter(|i| {
                    matches!(
                        i.kind,
                        ItemKind::Merge { .. }
                            | ItemKind::Join {
                                kind: MergeKind::Add | MergeKind::Mul
                            }
                    )
                })
                .count();
            assert_eq!(count("circle"), circles, "{n}");
            // Boxes and pills, plus the background.
            assert_eq!(count("rect"), f.items.len() - circles + 1, "{n}");
            let edges: usize = f.items.iter().map(|i| i.inputs.len()).sum();
            let arrows = doc
                .descendants()
                .filter(|d| d.attribute("marker-end").is_some())
                .count();
            assert_eq!(arrows, edges + f.arcs.len(), "{n}");
        }
    }
}
