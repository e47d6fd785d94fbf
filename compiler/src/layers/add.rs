//! The residual addition `F(x) + shortcut(x)`: one add per element.

use super::shortcut::ShortcutPlan;
use super::{Cost, TrainCost};
use crate::graph::Shape;

pub fn infer(input: Shape) -> (Shape, Cost) {
    (
        input,
        Cost {
            flops: input.numel(),
            ..Cost::default()
        },
    )
}

/// Training: an addition keeps nothing and passes its gradient to both inputs unchanged
/// (no FLOPs). The add of an absent shortcut is its first input itself.
pub fn training(plan: Option<ShortcutPlan>) -> TrainCost {
    if plan == Some(ShortcutPlan::Absent) {
        return TrainCost::view();
    }
    TrainCost::default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_add_per_element() {
        let (_, c) = super::infer(crate::graph::Shape::Map { c: 2, h: 3, w: 3 });
        assert_eq!(c.flops, 18);
    }
}
