//! Every zoo network lowers: a snapshot of its lowered graph (the modules and wiring the
//! runtime builds, in text a reviewer can diff), its parameter count equal to the compiler's,
//! and unique weight names.

use std::collections::HashSet;

use archc_compiler::analysis::analyse;
use archc_compiler::lower::{lower, to_text};
use archc_compiler::{build_network, load_path, Overrides};

#[test]
fn lowered_graphs_of_the_zoo() {
    insta::glob!("../architectures", "*.arch", |path| {
        let (sources, prog) = load_path(path);
        let prog = match prog {
            Ok(p) => p,
            Err(archc_compiler::LoadError::Diagnostics(d)) => {
                panic!("{}", d.render_plain(&sources))
            }
            Err(e) => panic!("{e:?}"),
        };
        for n in &prog.root_networks {
            let t = build_network(&prog, n, &Overrides::default())
                .unwrap_or_else(|d| panic!("{n}: {}", d.render_plain(&sources)));
            let l = lower(&t);
            assert_eq!(
                l.params as u128,
                analyse(&t, 1).params,
                "{n}: lowered parameters"
            );
            let mut seen = HashSet::new();
            for node in &l.nodes {
                assert!(
                    seen.insert(node.name.clone()),
                    "{n}: duplicate name {}",
                    node.name
                );
                for &i in &node.inputs {
                    assert!(i < node.id, "{n}: {} reads a later node", node.name);
                }
            }
            insta::assert_snapshot!(n.as_str(), to_text(&l));
        }
    });
}

#[test]
fn lowered_graph_round_trips_through_json() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("architectures/cifar.arch");
    let (_, prog) = load_path(&path);
    let prog = prog.expect("zoo compiles");
    let t = build_network(&prog, "cifar_resnet20", &Overrides::default()).expect("builds");
    let l = lower(&t);
    let json = serde_json::to_string(&l).unwrap();
    let back: archc_compiler::lower::LoweredGraph = serde_json::from_str(&json).unwrap();
    assert_eq!(back, l);
    assert_eq!(l.output, vec![10]);
    assert!(l.softmax);
    assert_eq!(l.nodes[l.logits].name, "fc");
}
