//! Validation of a [`LoweredGraph`] before any Burn module is built.
//!
//! A lowered graph is plain data (it can be read from JSON), so the runtime re-checks everything
//! Burn would panic on. Here the graph: ids, wiring (every input is an earlier node), one input
//! node of the graph's shape, the logits node. Each op checks its own node through its
//! [`NodeOp::check`](crate::ops::NodeOp::check) (`runtime/src/ops/`): the number of inputs,
//! sizes (nothing zero, groups dividing the channels, a kernel that fits its padded input, by
//! the compiler's own size rules), hyper-parameters (epsilon, momentum, dropout probability);
//! and every node's declared output shape must be the one its op gives from its inputs. A graph
//! that passes cannot make [`Network::new`](crate::Network::new) or a forward pass on a
//! correctly shaped input panic.

use archc_compiler::lower::LoweredGraph;

use crate::ops::{self, NodeOp};

/// Why a lowered graph cannot be built: the offending node and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot build network `{network}`: node %{node} `{name}`: {message}")]
pub struct BuildError {
    pub network: String,
    pub node: usize,
    pub name: String,
    pub message: String,
}

/// The ops of the nodes of `g` (none for the input).
pub type NodeOps = Vec<Option<Box<dyn NodeOp>>>;

/// Check `g`; on success every node's output shape is consistent with its op and inputs, and
/// the result is every node's op.
pub fn check(g: &LoweredGraph) -> Result<NodeOps, BuildError> {
    let err = |i: usize, message: String| BuildError {
        network: g.network.clone(),
        node: i,
        name: g.nodes.get(i).map(|n| n.name.clone()).unwrap_or_default(),
        message,
    };
    if g.nodes.is_empty() {
        return Err(err(0, "the graph has no nodes".into()));
    }
    if g.logits >= g.nodes.len() {
        return Err(err(0, format!("logits node %{} does not exist", g.logits)));
    }
    for (k, o) in g.outputs.iter().enumerate() {
        if o.node >= g.nodes.len() {
            return Err(err(
                0,
                format!("output `{}` node %{} does not exist", o.name, o.node),
            ));
        }
        if k == 0 && o.node != g.logits {
            return Err(err(
                o.node,
                "the first output is not the logits node".into(),
            ));
        }
        if !o.weight.is_finite() || o.weight < 0.0 {
            return Err(err(
                o.node,
                format!("output `{}` has loss weight {}", o.name, o.weight),
            ));
        }
    }
    if g.nodes[g.logits].output != g.output {
        return Err(err(
            g.logits,
            "the logits node's shape differs from the graph's".into(),
        ));
    }
    let mut inputs = 0;
    let mut node_ops = Vec::with_capacity(g.nodes.len());
    for (i, n) in g.nodes.iter().enumerate() {
        if n.id != i {
            return Err(err(i, format!("has id {} at position {i}", n.id)));
        }
        if n.output.is_empty() || n.output.contains(&0) {
            return Err(err(i, format!("output shape {:?} is empty", n.output)));
        }
        if let Some(&j) = n.inputs.iter().find(|&&j| j >= i) {
            return Err(err(
                i,
                format!("reads node %{j}, which is not an earlier node"),
            ));
        }
        let ins: Vec<&[usize]> = n
            .inputs
            .iter()
            .map(|&j| g.nodes[j].output.as_slice())
            .collect();
        // The graph's input is no op (`node_op` gives none); every other node's op checks it.
        let op = ops::node_op(&n.op).map_err(|m| err(i, m))?;
        let expected = match &op {
            None => {
                inputs += 1;
                if !n.inputs.is_empty() {
                    return Err(err(i, format!("has {} inputs, expected 0", n.inputs.len())));
                }
                if n.output != g.input {
                    return Err(err(i, "input shape differs from the graph's".into()));
                }
                if !matches!(n.output.len(), 1 | 3) {
                    return Err(err(i, "the input must be [C, H, W] or [N]".into()));
                }
                n.output.clone()
            }
            Some(op) => op.check(&ins).map_err(|m| err(i, m))?,
        };
        if expected != n.output {
            return Err(err(
                i,
                format!("declares output {:?}, its op gives {expected:?}", n.output),
            ));
        }
        node_ops.push(op);
    }
    if inputs != 1 {
        return Err(err(
            0,
            format!("the graph has {inputs} input nodes, expected 1"),
        ));
    }
    Ok(node_ops)
}
