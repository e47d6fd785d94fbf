//! Language features end to end: what a file means, checked through the compiled graph.

use archc_compiler::analysis::analyse;
use archc_compiler::graph::Op;
use archc_compiler::{compile_str, Overrides, TypedGraph};

fn compile(src: &str) -> Vec<TypedGraph> {
    let (sources, r) = compile_str("test.arch", src, &Overrides::default());
    match r {
        Ok(n) => n,
        Err(d) => panic!("{}", d.render_plain(&sources)),
    }
}

fn names(t: &TypedGraph) -> Vec<String> {
    t.graph.nodes.iter().map(|n| n.name.clone()).collect()
}

#[test]
fn two_block_calls_on_one_stage_line_never_share_names() {
    let nets = compile(
        "block b(c) {\n conv 3x3, c, stride: stride\n conv 3x3, c\n}\nnetwork n {\n input 3x32x32\n shortcut B\n s b(16) x 2, b(32) x 2, stride: 2\n}\n",
    );
    let ns = names(&nets[0]);
    let mut sorted = ns.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), ns.len(), "{ns:?}");
    assert!(ns.contains(&"s.3.shortcut".to_string()), "{ns:?}");
}

#[test]
fn stage_stride_applies_to_the_first_repetition_only() {
    let nets = compile(
        "block b(c) {\n conv 3x3, c, stride: stride\n}\nnetwork n {\n input 3x32x32\n s b(8) x 3, stride: 2\n}\n",
    );
    let strides: Vec<u64> = nets[0]
        .graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Conv2d(c) => Some(c.stride[0]),
            _ => None,
        })
        .collect();
    assert_eq!(strides, vec![2, 1, 1]);
    assert_eq!(nets[0].output_shape().dims(), vec![8, 16, 16]);
}

#[test]
fn residual_moves_the_last_relu_after_the_add() {
    let nets = compile(
        "block b(c) {\n conv 3x3, c\n conv 3x3, c\n}\nnetwork n {\n input 16x8x8\n shortcut B\n s b(16)\n}\n",
    );
    let kinds: Vec<&str> = nets[0].graph.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(
        kinds,
        ["input", "conv", "bn", "relu", "conv", "bn", "shortcut", "add", "relu"]
    );
}

#[test]
fn plain_blocks_keep_relu_in_place_and_add_nothing() {
    let nets = compile(
        "block b(c) {\n conv 3x3, c\n conv 3x3, c\n}\nnetwork n {\n input 16x8x8\n s b(16)\n}\n",
    );
    let kinds: Vec<&str> = nets[0].graph.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(kinds, ["input", "conv", "bn", "relu", "conv", "bn", "relu"]);
}

#[test]
fn nested_blocks_inline_and_take_a_stride() {
    let nets = compile(
        "block convbn(c, k) {\n conv k, c, stride: stride\n}\nblock b(c) {\n convbn(c, 3), stride: stride\n convbn(c, 1)\n}\nnetwork n {\n input 3x32x32\n s b(8) x 2, stride: 2\n}\n",
    );
    let t = &nets[0];
    assert_eq!(t.output_shape().dims(), vec![8, 16, 16]);
    assert!(names(t).contains(&"s.0.conv2".to_string()));
}

#[test]
fn settings_and_with_overrides() {
    let nets = compile(
        "family f(w) {\n input 3x32x32\n classes 10\n norm none\n s conv 3x3, w\n head avgpool, fc classes\n}\nnetwork a = f(8)\nnetwork b = f(8) with norm bn, classes 5\nnetwork c = b with bias true\n",
    );
    let r: Vec<_> = nets.iter().map(|t| analyse(t, 1)).collect();
    // a: biased conv (no norm) 3*9*8+8 = 224, fc 8*10+10 = 90
    assert_eq!(r[0].params, 224 + 90);
    // b: conv without bias 216 + BN 16, fc 8*5+5 = 45
    assert_eq!(r[1].params, 216 + 16 + 45);
    assert_eq!(r[1].output, vec![5]);
    // c: b with a biased conv
    assert_eq!(r[2].params, 224 + 16 + 45);
}

#[test]
fn integer_expressions() {
    let nets = compile(
        "block b(c) {\n conv 1x1, (c + c/2) * 2 - c % 3\n}\nnetwork n {\n input 4x4x4\n s b(16)\n}\n",
    );
    // (16 + 8) * 2 - 1 = 47
    assert_eq!(nets[0].output_shape().dims(), vec![47, 4, 4]);
}

#[test]
fn windowed_global_and_adaptive_pools() {
    let nets = compile(
        "network n {\n input 3x32x32\n a avgpool 2x2\n m maxpool 3x3, stride: 2, padding: 1\n d avgpool output: 3x3\n g avgpool\n}\n",
    );
    let shapes: Vec<Vec<u64>> = nets[0].nodes.iter().map(|t| t.output.dims()).collect();
    assert_eq!(
        shapes,
        vec![
            vec![3, 32, 32],
            vec![3, 16, 16],
            vec![3, 8, 8],
            vec![3, 3, 3],
            vec![3, 1, 1]
        ]
    );
}

#[test]
fn use_loads_a_library_relative_to_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lib")).unwrap();
    std::fs::write(
        dir.path().join("lib/b.arch"),
        "block b(c) {\n conv 3x3, c\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("net.arch"),
        "use \"lib/b.arch\"\nuse \"lib/b.arch\"\nnetwork n {\n input 3x8x8\n s b(4)\n}\n",
    )
    .unwrap();
    let (sources, prog) = archc_compiler::load_path(&dir.path().join("net.arch"));
    let prog = prog.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(sources.len(), 2, "a file used twice is loaded once");
    assert_eq!(prog.root_networks, vec!["n".to_string()]);
}
