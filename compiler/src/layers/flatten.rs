//! `flatten`: C×H×W to one vector of C·H·W features. A view: no cost. (An `fc` after a map
//! flattens implicitly, as torchvision's `torch.flatten(x, 1)` does.)

use linkme::distributed_slice;

use super::{Cost, Signature, TrainCost, Unit, LAYER_UNITS};
use crate::graph::Shape;

pub static SIGNATURE: Signature = Signature {
    positional: &[],
    required: 0,
    named: &[],
    example: "flatten",
};

#[distributed_slice(LAYER_UNITS)]
pub static UNIT: Unit = Unit {
    name: "flatten",
    signature: &SIGNATURE,
    defaults: &[],
    summary: "a feature map as one vector (a view)",
    shape_rule: "C×H×W → C·H·W",
    cost_rule: "nothing",
    training_rule: "nothing: a view of its input (what keeps it keeps the input's tensor)",
    build: |_, _, _| Some(vec![crate::graph::Op::Flatten]),
    rules: None,
};

pub fn infer(input: Shape) -> (Shape, Cost) {
    let n = input.numel() as u64;
    (Shape::Flat { n }, Cost::default())
}

/// Training: a view; nothing kept, nothing computed.
pub fn training() -> TrainCost {
    TrainCost::view()
}

#[cfg(test)]
mod tests {
    #[test]
    fn flattens_maps() {
        use crate::graph::Shape;
        assert_eq!(
            super::infer(Shape::Map { c: 512, h: 7, w: 7 }).0,
            Shape::Flat { n: 25088 }
        );
    }
}
