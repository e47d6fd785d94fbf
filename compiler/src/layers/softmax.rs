//! `softmax`: class probabilities. Counted as an exponential, a sum and a division per element.
//! Training uses the logits before it (softmax cross-entropy).

use linkme::distributed_slice;

use super::{Cost, Signature, Unit, LAYER_UNITS};
use crate::graph::Shape;

pub static SIGNATURE: Signature = Signature {
    positional: &[],
    required: 0,
    named: &[],
    example: "softmax",
};

#[distributed_slice(LAYER_UNITS)]
pub static UNIT: Unit = Unit {
    name: "softmax",
    signature: &SIGNATURE,
    defaults: &[],
    summary: "class probabilities over the channels (training uses the logits before it)",
    shape_rule: "the input's shape",
    cost_rule: "FLOPs 3 per element (an exponential, a sum, a division)",
    build: |_, _, _| Some(vec![crate::graph::Op::Softmax]),
    rules: None,
};

pub fn infer(input: Shape) -> (Shape, Cost) {
    (
        input,
        Cost {
            flops: 3 * input.numel(),
            ..Cost::default()
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn three_ops_per_element() {
        assert_eq!(
            super::infer(crate::graph::Shape::Flat { n: 1000 }).1.flops,
            3000
        );
    }
}
