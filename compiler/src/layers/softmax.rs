//! `softmax`: class probabilities. Counted as an exponential, a sum and a division per element.
//! Training uses the logits before it (softmax cross-entropy).

use linkme::distributed_slice;

use super::{Cost, Keep, Signature, TrainCost, Unit, LAYER_UNITS};
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
    training_rule: "a trailing softmax is not run in training (the loss is softmax cross-entropy on the logits); elsewhere it keeps its output, backward 4 per element (dy·y − y·Σ dy·y)",
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

/// Training of a softmax inside a network (a trailing one is left to the loss): it keeps its
/// output; the input gradient `y·(dy − Σ dy·y)` takes 4 per element.
pub fn training(output: Shape) -> TrainCost {
    TrainCost::elementwise(Some(Keep::Output), 4, output.numel())
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
