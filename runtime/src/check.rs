//! Validation of a [`LoweredGraph`] before any Burn module is built.
//!
//! A lowered graph is plain data (it can be read from JSON), so the runtime re-checks everything
//! Burn would panic on: wiring (every input is an earlier node, the right number of inputs),
//! sizes (nothing zero, groups dividing the channels, a kernel that fits its padded input),
//! hyper-parameters (epsilon, momentum, dropout probability), and that every node's declared
//! output shape is the one its op produces from its inputs. A graph that passes cannot make
//! [`Network::new`](crate::Network::new) or a forward pass on a correctly shaped input panic.

use archc_compiler::layers::{out_size, out_size_ceil};
use archc_compiler::lower::{LoweredGraph, LoweredOp};

/// Why a lowered graph cannot be built: the offending node and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("cannot build network `{network}`: node %{node} `{name}`: {message}")]
pub struct BuildError {
    pub network: String,
    pub node: usize,
    pub name: String,
    pub message: String,
}

/// Output size of a window op along one axis, or `None` if the window does not fit: the
/// compiler's own rule ([`out_size`], or [`out_size_ceil`] for a pool in `ceil_mode`), so the
/// two can never disagree.
fn window(
    input: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    ceil: bool,
) -> Option<usize> {
    let w = |x: usize| u64::try_from(x).ok();
    let size = if ceil { out_size_ceil } else { out_size };
    size(w(input)?, w(kernel)?, w(stride)?, w(pad)?, w(dilation)?)
        .and_then(|x| usize::try_from(x).ok())
}

fn numel(s: &[usize]) -> usize {
    s.iter().product()
}

/// Check `g`; on success every node's output shape is consistent with its op and inputs.
pub fn check(g: &LoweredGraph) -> Result<(), BuildError> {
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
    if g.nodes[g.logits].output != g.output {
        return Err(err(
            g.logits,
            "the logits node's shape differs from the graph's".into(),
        ));
    }
    let mut inputs = 0;
    for (i, n) in g.nodes.iter().enumerate() {
        if n.id != i {
            return Err(err(i, format!("has id {} at position {i}", n.id)));
        }
        if n.output.is_empty() || n.output.contains(&0) {
            return Err(err(i, format!("output shape {:?} is empty", n.output)));
        }
        let arity = match n.op {
            LoweredOp::Input => 0,
            LoweredOp::Add => 2,
            LoweredOp::Highway { .. } => 3,
            _ => 1,
        };
        if n.inputs.len() != arity {
            return Err(err(
                i,
                format!("has {} inputs, expected {arity}", n.inputs.len()),
            ));
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
        let map = |s: &[usize]| -> Result<[usize; 3], BuildError> {
            match *s {
                [c, h, w] => Ok([c, h, w]),
                _ => Err(err(
                    i,
                    format!("needs a feature map [C, H, W] input, got {s:?}"),
                )),
            }
        };
        let expected: Vec<usize> = match &n.op {
            LoweredOp::Input => {
                inputs += 1;
                if n.output != g.input {
                    return Err(err(i, "input shape differs from the graph's".into()));
                }
                if !matches!(n.output.len(), 1 | 3) {
                    return Err(err(i, "the input must be [C, H, W] or [N]".into()));
                }
                n.output.clone()
            }
            LoweredOp::Conv2d {
                channels,
                kernel_size,
                stride,
                padding,
                dilation,
                groups,
                ..
            } => {
                let [c, h, w] = map(ins[0])?;
                if c != channels[0] {
                    return Err(err(
                        i,
                        format!("input has {c} channels, expected {}", channels[0]),
                    ));
                }
                let sizes = [kernel_size, stride, dilation];
                if channels.contains(&0) || sizes.iter().any(|a| a.contains(&0)) || *groups == 0 {
                    return Err(err(i, "a size is zero".into()));
                }
                if channels[0] % groups != 0 || channels[1] % groups != 0 {
                    return Err(err(
                        i,
                        format!("groups {groups} do not divide channels {channels:?}"),
                    ));
                }
                let oh = window(h, kernel_size[0], stride[0], padding[0], dilation[0], false);
                let ow = window(w, kernel_size[1], stride[1], padding[1], dilation[1], false);
                match (oh, ow) {
                    (Some(oh), Some(ow)) => vec![channels[1], oh, ow],
                    _ => return Err(err(i, format!("kernel does not fit the {h}x{w} input"))),
                }
            }
            LoweredOp::MaxPool2d {
                kernel_size,
                strides,
                padding,
                ceil_mode,
            }
            | LoweredOp::AvgPool2d {
                kernel_size,
                strides,
                padding,
                ceil_mode,
                ..
            } => {
                let [c, h, w] = map(ins[0])?;
                if kernel_size.contains(&0) || strides.contains(&0) {
                    return Err(err(i, "a size is zero".into()));
                }
                if padding[0] > kernel_size[0] / 2 || padding[1] > kernel_size[1] / 2 {
                    return Err(err(i, "padding exceeds half the kernel".into()));
                }
                let oh = window(h, kernel_size[0], strides[0], padding[0], 1, *ceil_mode);
                let ow = window(w, kernel_size[1], strides[1], padding[1], 1, *ceil_mode);
                match (oh, ow) {
                    (Some(oh), Some(ow)) => vec![c, oh, ow],
                    _ => return Err(err(i, format!("window does not fit the {h}x{w} input"))),
                }
            }
            LoweredOp::AdaptiveAvgPool2d { output_size } => {
                let [c, _, _] = map(ins[0])?;
                vec![c, output_size[0], output_size[1]]
            }
            LoweredOp::BatchNorm {
                num_features,
                epsilon,
                momentum,
            } => {
                if ins[0].first() != Some(num_features) {
                    return Err(err(
                        i,
                        format!("input {:?} has not {num_features} channels", ins[0]),
                    ));
                }
                if !(epsilon.is_finite() && *epsilon > 0.0) {
                    return Err(err(i, format!("epsilon {epsilon} is not positive")));
                }
                if !(0.0..=1.0).contains(momentum) {
                    return Err(err(i, format!("momentum {momentum} is not in [0, 1]")));
                }
                ins[0].to_vec()
            }
            LoweredOp::Linear {
                d_input, d_output, ..
            } => {
                if numel(ins[0]) != *d_input {
                    return Err(err(
                        i,
                        format!("input {:?} has not {d_input} features", ins[0]),
                    ));
                }
                vec![*d_output]
            }
            LoweredOp::Dropout { prob } => {
                if !(0.0..=1.0).contains(prob) {
                    return Err(err(
                        i,
                        format!("dropout probability {prob} is not in [0, 1]"),
                    ));
                }
                ins[0].to_vec()
            }
            LoweredOp::Act { act } => {
                if let archc_compiler::graph::Activation::LeakyRelu { slope } = act {
                    if !slope.is_finite() {
                        return Err(err(i, format!("leaky_relu slope {slope} is not finite")));
                    }
                }
                ins[0].to_vec()
            }
            LoweredOp::PRelu { num_parameters } => {
                if ins[0].first() != Some(num_parameters) {
                    return Err(err(
                        i,
                        format!("input {:?} has not {num_parameters} channels", ins[0]),
                    ));
                }
                ins[0].to_vec()
            }
            LoweredOp::Softmax => ins[0].to_vec(),
            LoweredOp::Unit { unit, attrs } => match crate::ops::unit(unit) {
                Some(u) => (u.check)(attrs, ins[0]).map_err(|m| err(i, m))?,
                None => return Err(err(i, format!("no runtime unit for `{unit}`"))),
            },
            LoweredOp::Flatten => vec![numel(ins[0])],
            LoweredOp::Add => {
                if ins[0] != ins[1] {
                    return Err(err(i, format!("adds {:?} to {:?}", ins[0], ins[1])));
                }
                ins[0].to_vec()
            }
            LoweredOp::Highway { gate_bias } => {
                if ins[1] != ins[0] || ins[2] != ins[0] {
                    return Err(err(
                        i,
                        format!("mixes shapes {:?}, {:?}, {:?}", ins[0], ins[1], ins[2]),
                    ));
                }
                if !gate_bias.is_finite() {
                    return Err(err(i, format!("gate bias {gate_bias} is not finite")));
                }
                ins[0].to_vec()
            }
            LoweredOp::ZeroPadSubsample {
                stride,
                pad_before,
                pad_after,
            } => {
                let [c, h, w] = map(ins[0])?;
                if *stride == 0 {
                    return Err(err(i, "stride is zero".into()));
                }
                vec![
                    c + pad_before + pad_after,
                    h.div_ceil(*stride),
                    w.div_ceil(*stride),
                ]
            }
        };
        if expected != n.output {
            return Err(err(
                i,
                format!("declares output {:?}, its op gives {expected:?}", n.output),
            ));
        }
    }
    if inputs != 1 {
        return Err(err(
            0,
            format!("the graph has {inputs} input nodes, expected 1"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::window;

    #[test]
    fn window_sizes() {
        assert_eq!(window(224, 7, 2, 3, 1, false), Some(112));
        assert_eq!(window(112, 3, 2, 1, 1, false), Some(56));
        assert_eq!(window(2, 5, 1, 0, 1, false), None);
        assert_eq!(window(5, 3, 1, 0, 2, false), Some(1));
    }
}
