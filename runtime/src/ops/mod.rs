//! The runtime halves of op units.
//!
//! - `activation`: the forward of every activation and the codegen text for it (their lowered
//!   op is `LoweredOp::Act`).
//! - The kinds whose lowered op is `LoweredOp::Unit` (layer norm, group norm, maxout, drop
//!   path, channel shuffle) each have a [`RuntimeUnit`]: validation, module and forward, so the
//!   rest of the runtime (`network.rs`, `check.rs`, `weights.rs`) serves them without knowing
//!   them. A new such kind is its compiler unit, its `RuntimeUnit` and a line in [`unit`].
//!
//! (The older kinds, conv, pools, fc, bn, dropout, are still built and run in `network.rs`.)

pub mod activation;
pub mod norm;
pub mod shape_ops;

use archc_compiler::graph::Attr;
use burn::module::{Flag, Module, Param};
use burn::tensor::{Device, Tensor};

/// A lowered unit node's attributes (`LoweredOp::Unit::attrs`).
pub type Attrs = [(String, Attr)];

/// The runtime half of a kind whose lowered op is `LoweredOp::Unit`.
pub struct RuntimeUnit {
    /// The unit's word (`layernorm`).
    pub unit: &'static str,
    /// The output shape per sample from the input's, or what is wrong with the node (so that
    /// building and running it cannot panic).
    pub check: fn(&Attrs, &[usize]) -> Result<Vec<usize>, String>,
    /// The node's module, with its parameters in the order of the compiler's
    /// `UnitRules::params` (PyTorch's names), if it has parameters or acts only in training.
    pub build: fn(&Attrs, u64, usize, &Device) -> Option<UnitLayer>,
    /// The forward on a map `[N, C, H, W]`; a vector `[N, F]` comes as `[N, F, 1, 1]`.
    pub forward: fn(&Attrs, Option<&UnitLayer>, Tensor<4>) -> Tensor<4>,
}

/// The module of a unit node: its parameters (vectors over channels, in the compiler's order)
/// and a training flag (cleared by `valid()` and by freezing, as Burn's dropout's).
#[derive(Module, Debug)]
pub struct UnitLayer {
    pub params: Vec<Param<Tensor<1>>>,
    pub training: Param<Flag>,
}

impl UnitLayer {
    pub fn new(params: Vec<Param<Tensor<1>>>) -> Self {
        UnitLayer {
            params,
            training: Param::from_bool(true),
        }
    }
}

/// The runtime unit of `name`.
pub fn unit(name: &str) -> Option<&'static RuntimeUnit> {
    [
        &norm::LAYERNORM,
        &norm::GROUPNORM,
        &shape_ops::MAXOUT,
        &shape_ops::CHANNEL_SHUFFLE,
        &shape_ops::DROP_PATH,
    ]
    .into_iter()
    .find(|u| u.unit == name)
}

/// An integer attribute (validated by the unit's `check`).
pub fn int(attrs: &Attrs, name: &str) -> usize {
    archc_compiler::layers::attr(attrs, name).int() as usize
}

/// A decimal attribute.
pub fn float(attrs: &Attrs, name: &str) -> f64 {
    archc_compiler::layers::attr(attrs, name).float()
}

/// `count` (from `attrs`) divides the channels `c`, or says which does not.
pub fn divides(what: &str, count: usize, c: usize) -> Result<(), String> {
    if count == 0 || !c.is_multiple_of(count) {
        return Err(format!("{count} {what} do not divide {c} channels"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Every compiler unit with rules has its runtime half, and no runtime unit is stray.
    #[test]
    fn every_unit_op_kind_runs() {
        for u in archc_compiler::layers::units() {
            assert_eq!(
                u.rules.is_some(),
                super::unit(u.name).is_some(),
                "`{}`: compiler rules and runtime unit go together",
                u.name
            );
        }
    }
}
