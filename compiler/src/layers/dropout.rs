//! `dropout P`: zeroes activations with probability P while training; free at inference.

use linkme::distributed_slice;

use super::args::Args;
use super::{Dtype, Extra, Signature, TrainCost, Unit, Work, LAYER_UNITS};
use crate::diag::{at, CompileError};
use crate::graph::{Op, Shape};

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
    training_rule: "forward 1 per element (the mask applied); keeps its mask (1 byte per element, CUDA's bool mask; PyTorch on the CPU keeps an f32 one); backward 1 per element; P = 0 is the identity",
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

/// Training: the mask applied in the forward (1 per element) and kept for the backward (one
/// byte per element: `native_dropout`'s bool mask on CUDA); the input gradient is the output
/// gradient times the mask. With P = 0 PyTorch returns the input itself.
pub fn training(p: f64, input: Shape) -> TrainCost {
    if p == 0.0 {
        return TrainCost::view();
    }
    let e = input.numel();
    TrainCost {
        forward_flops: Some(e),
        extras: vec![Extra {
            what: "dropout mask",
            elements: e,
            per_sample: true,
            dtype: Dtype::Mask,
        }],
        input_grad: Work::elementwise(1, e),
        ..TrainCost::default()
    }
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
