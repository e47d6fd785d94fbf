use super::*;

fn ok(src: &str) -> File {
    match parse(src, FileId(0)) {
        Ok(f) => f,
        Err(e) => panic!("parse failed: {e:?}"),
    }
}

fn err(src: &str) -> String {
    match parse(src, FileId(0)) {
        Ok(_) => panic!("expected a syntax error"),
        Err(e) => e[0].to_string(),
    }
}

#[test]
fn block_with_layers_and_named_args() {
    let f = ok("block basic(c) {\n  conv 3x3, c, stride: stride\n  conv 3x3, c\n}\n");
    let Item::Block(b) = &f.items[0] else {
        panic!()
    };
    assert_eq!(b.name.name, "basic");
    assert_eq!(b.params.len(), 1);
    assert_eq!(b.body.len(), 2);
    let Segment::Layer(l) = &b.body[0] else {
        panic!()
    };
    assert_eq!(l.kind.keyword(), "conv");
    assert_eq!(l.positional.len(), 2);
    assert_eq!(l.named[0].name.name, "stride");
}

#[test]
fn stage_mixes_layers_and_repeated_calls() {
    let f = ok("family r(b, n) {\n input 3x224x224\n conv2_x maxpool 3x3, stride: 2, padding: 1, b(64) x n, stride: 1\n head avgpool, fc 1000, softmax\n}\n");
    let Item::Family(fam) = &f.items[0] else {
        panic!()
    };
    assert_eq!(fam.body.settings.len(), 1);
    let st = &fam.body.stages[0];
    assert_eq!(st.segments.len(), 2);
    let Segment::Call(c) = &st.segments[1] else {
        panic!()
    };
    assert!(c.repeat.is_some());
    assert_eq!(c.named.len(), 1);
    assert_eq!(fam.body.stages[1].segments.len(), 3);
}

#[test]
fn network_instances_with_overrides() {
    let f = ok("network plain34 = resnet(basic, 3, 4, 6, 3) with shortcut none, classes 10\nnetwork v = vgg16 with norm bn\n");
    let Item::Network(n) = &f.items[0] else {
        panic!()
    };
    let NetworkRhs::Instance { args, with, .. } = &n.def else {
        panic!()
    };
    assert_eq!(args.as_ref().unwrap().len(), 5);
    assert_eq!(with.len(), 2);
    let Item::Network(n) = &f.items[1] else {
        panic!()
    };
    let NetworkRhs::Instance { args, .. } = &n.def else {
        panic!()
    };
    assert!(args.is_none());
}

#[test]
fn expressions_have_precedence() {
    let f = ok("block b(c) { conv 1x1, 4*c + c/2 }\n");
    let Item::Block(b) = &f.items[0] else {
        panic!()
    };
    let Segment::Layer(l) = &b.body[0] else {
        panic!()
    };
    let Value::Expr(Expr::Binary { op, .. }) = &l.positional[1] else {
        panic!()
    };
    assert_eq!(*op, BinOp::Add);
}

#[test]
fn comments_and_blank_lines_and_continuations() {
    ok("# a comment\n\nuse \"blocks.arch\"  # trailing\nblock b(c) {\n  conv 3x3, c,\n     stride: 2\n}\n");
}

#[test]
fn errors_read_like_a_person_wrote_them() {
    let m = err("block b(c) {\n  cnv 3x3, c\n}\n");
    assert!(m.contains("`cnv` is not a layer"), "{m}");
    let m = err("network n {\n  input 3x32x32\n  c conv 3x3 16\n}\n");
    assert!(
        m.contains("expected the end of the line, `,` or `}`, found `16`"),
        "{m}"
    );
    let m = err("network = r(1)\n");
    assert!(m.contains("a name"), "{m}");
}

#[test]
fn huge_numbers_are_a_diagnostic() {
    let e = parse("block b() { conv 3x3, 99999999999999999999999 }", FileId(0)).unwrap_err();
    assert!(matches!(e[0], SyntaxError::NumberTooLarge { .. }));
}

#[test]
fn keyword_table_is_the_grammars() {
    use crate::keywords::{is_keyword, LAYER_KINDS};
    // Every layer kind parses as a layer and is reserved; a word outside the table is neither.
    for k in LAYER_KINDS {
        let text = format!("block b(c) {{\n    {k}\n}}\n");
        let f = parse(&text, FileId(0)).unwrap_or_else(|e| panic!("{k}: {e:?}"));
        let Item::Block(b) = &f.items[0] else {
            panic!()
        };
        let Segment::Layer(l) = &b.body[0] else {
            panic!("{k} is not a layer")
        };
        assert_eq!(l.kind.keyword(), *k);
        assert!(is_keyword(k));
    }
    assert!(LAYER_KINDS.contains(&"relu6") && LAYER_KINDS.contains(&"silu"));
    assert!(!is_keyword("swish") && LayerKind::from_keyword("swish").is_none());
    let e = parse("block b(c) {\n    swish\n}\n", FileId(0)).expect_err("not a layer");
    assert!(
        format!("{e:?}").contains("silu"),
        "the error lists the kinds: {e:?}"
    );
}

/// Every syntax error of a file, as (line, column) of each span's start (1-based).
fn error_lines(src: &str) -> Vec<(usize, usize)> {
    let errs = match parse(src, FileId(0)) {
        Ok(_) => panic!("expected syntax errors"),
        Err(e) => e,
    };
    errs.iter()
        .map(|e| {
            let pos = e.span().start;
            let line = src[..pos].matches('\n').count() + 1;
            let col = pos - src[..pos].rfind('\n').map_or(0, |i| i + 1) + 1;
            (line, col)
        })
        .collect()
}

#[test]
fn two_misspelt_layers_give_two_errors_at_their_lines() {
    let src = "block b(c) {\n    cnv 3x3, c\n    conv 3x3, c\n    bachnorm\n}\n\nnetwork n {\n    input 3x32x32\n    conv1 conv 3x3, 16,\n          relu\n    conv2 b(16) x 2\n    head avgpool, fcc 10\n}\n";
    assert_eq!(error_lines(src), vec![(2, 9), (4, 13), (12, 23)]);
    let errs = parse(src, FileId(0)).unwrap_err();
    assert!(errs[0].to_string().contains("`cnv`"), "{}", errs[0]);
    assert!(errs[1].to_string().contains("bachnorm"), "{}", errs[1]);
}

#[test]
fn recovery_blanks_a_statement_continued_by_a_comma() {
    // The error is on the continuation line; the whole statement is left out, so the next
    // line is not read as its continuation, and the later mistake is still found.
    let src = "network n {\n    input 3x32x32\n    conv1 conv 3x3, 16,\n          cnv 3x3\n    conv2 cnv 3x3, 16\n}\n";
    assert_eq!(error_lines(src), vec![(4, 15), (5, 15)]);
}

#[test]
fn recovery_stops_at_a_brace_and_adds_no_errors_of_its_own() {
    // A single bad line in a block: one error, not a cascade.
    assert_eq!(
        error_lines("block b(c) {\n    cnv 3x3, c\n}\n"),
        vec![(2, 9)]
    );
    // A missing closing brace is reported once; nothing after it is guessed at.
    assert_eq!(
        error_lines("block b(c) {\n    conv 3x3, c\n\nblock d(c) {\n    conv 3x3, c\n}\n").len(),
        1
    );
    // Number errors of the lines that parse are still collected with the grammar errors.
    let src = "network n {\n    input 3x32x32\n    conv1 cnv 3x3, 16\n    conv2 conv 3x3, 99999999999999999999999\n}\n";
    assert_eq!(error_lines(src).len(), 2);
}
