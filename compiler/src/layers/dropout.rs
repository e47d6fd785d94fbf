//! `dropout P`: zeroes activations with probability P while training; free at inference.

use linkme::distributed_slice;

use super::args::Args;
use super::{Signature, Unit, LAYER_UNITS};
use crate::diag::{at, CompileError};
use crate::graph::Op;

pub static SIGNATURE: Signature = Signature {
    positional: &["probability"],
    required: 1,
    named: &[],
    example: "dropout 0.5",
};

#[distributed_slice(LAYER_UNITS)]
pub static UNIT: Unit = Unit {
    name: "dropout",
    signature: &SIGNATURE,
    defaults: &[],
    summary: "zeroes each element with probability P while training (the rest scaled by 1/(1−P)); identity in evaluation",
    shape_rule: "the input's shape",
    cost_rule: "nothing (no parameters, no FLOPs counted)",
    build: |_, a, _| build(a),
    rules: None,
};

pub fn build(a: &mut Args) -> Option<Vec<Op>> {
    let (p, span) = a.float(0, "dropout probability")?;
    if !(0.0..1.0).contains(&p) {
        a.errors.push(CompileError::Probability { p, at: at(span) });
        return None;
    }
    Some(vec![Op::Dropout { p }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::args::ArgVal;

    #[test]
    fn probability_must_be_below_one() {
        let mut a = Args::default();
        a.positional.push((ArgVal::Float(1.5), Default::default()));
        assert!(build(&mut a).is_none());
        assert!(matches!(a.errors[0], CompileError::Probability { .. }));
        let mut a = Args::default();
        a.positional.push((ArgVal::Float(0.5), Default::default()));
        assert_eq!(build(&mut a), Some(vec![Op::Dropout { p: 0.5 }]));
    }
}
