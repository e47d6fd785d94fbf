//! Warnings: a block or family parameter that its body never reads. Such a parameter is
//! usually a typo or a leftover (every call still passes it, and nothing checks it); the
//! network compiles and `archc check` exits 0, with the warning and its span on stderr.

use std::collections::HashSet;

use archc_grammar::ast::*;

use crate::diag::{at, CompileError, Diagnostics};
use crate::resolve::Program;

fn expr(e: &Expr, out: &mut HashSet<String>) {
    match e {
        Expr::Int(..) | Expr::In(..) | Expr::Float(..) => {}
        Expr::Call { args, .. } => args.iter().for_each(|a| expr(a, out)),
        Expr::Var(v) => {
            out.insert(v.name.clone());
        }
        Expr::Neg(inner, _) => expr(inner, out),
        Expr::Binary { lhs, rhs, .. } => {
            expr(lhs, out);
            expr(rhs, out);
        }
    }
}

fn value(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::Expr(e) => expr(e, out),
        Value::Word(w) => {
            out.insert(w.name.clone());
        }
        Value::Dims(..) | Value::Float(..) => {}
    }
}

/// Every name the segments read: in expressions and words, and as a block called.
fn segments(segs: &[Segment], out: &mut HashSet<String>) {
    for s in segs {
        match s {
            Segment::Layer(l) => {
                l.positional.iter().for_each(|v| value(v, out));
                l.named.iter().for_each(|n| value(&n.value, out));
            }
            Segment::Call(c) => {
                out.insert(c.callee.name.clone());
                c.args.iter().for_each(|a| expr(a, out));
                if let Some(r) = &c.repeat {
                    expr(r, out);
                }
                c.named.iter().for_each(|n| value(&n.value, out));
            }
            Segment::Merge(m) => m.branches.iter().for_each(|b| segments(&b.segments, out)),
        }
    }
}

/// Warnings for the parameters of `prog`'s blocks and families that their bodies never read.
pub fn unused_parameters(prog: &Program) -> Diagnostics {
    let mut d = Diagnostics::new();
    let mut warn = |what: &'static str, owner: &Ident, params: &[Ident], used: &HashSet<String>| {
        for p in params.iter().filter(|p| !used.contains(&p.name)) {
            d.push(
                p.span.file,
                CompileError::UnusedParameter {
                    what,
                    name: p.name.clone(),
                    owner: owner.name.clone(),
                    at: at(p.span),
                },
            );
        }
    };
    for b in prog.blocks.values() {
        let mut used = HashSet::new();
        segments(&b.body, &mut used);
        warn("block", &b.name, &b.params, &used);
    }
    for f in prog.families.values() {
        let mut used = HashSet::new();
        f.body
            .settings
            .iter()
            .for_each(|s| value(&s.value, &mut used));
        for st in &f.body.stages {
            segments(&st.segments, &mut used);
        }
        warn("family", &f.name, &f.params, &used);
    }
    d.finish()
}
