//! The activations: `relu`, `relu6`, `sigmoid`, `hardsigmoid`, `silu`, `hardswish`, `gelu`,
//! `tanh`, `leaky_relu` and `prelu`. Each is a layer of its own (`silu`), a conv's or fc's
//! `act:` argument (`conv 3x3, 64, act: silu`) and the network's `act` setting (`act silu`).
//! ReLU follows every conv by default; in a residual block the last activation comes after
//! the addition.
//!
//! This file is the activations' op unit: names, arguments, definitions (PyTorch's functional
//! equivalents), FLOP counts and parameters. A new activation is a variant here, its word in
//! the grammar's `layer_kind`, and its forward in `runtime/src/ops/activation.rs`.

use serde::{Deserialize, Serialize};

use super::args::{ArgVal, Args};
use super::{Cost, Keep, LayerDefaults, Signature, TrainCost, Unit, Work};
use crate::diag::{at, CompileError};
use crate::graph::Op;
use crate::graph::Shape;

/// An elementwise activation (PReLU: one learned slope per channel).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fn", rename_all = "snake_case")]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)` (MobileNetV2).
    Relu6,
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `relu6(x + 3) / 6`, PyTorch's `hardsigmoid` (MobileNetV3).
    HardSigmoid,
    /// `x * sigmoid(x)` (also called swish; EfficientNet).
    Silu,
    /// `x * relu6(x + 3) / 6` (MobileNetV3).
    HardSwish,
    /// `x * Φ(x)`, exact (`approximate: none`) or with PyTorch's tanh approximation.
    Gelu {
        tanh: bool,
    },
    Tanh,
    /// `max(x, 0) + slope * min(x, 0)`.
    LeakyRelu {
        slope: f64,
    },
    /// `max(x, 0) + a_c * min(x, 0)` with one learned `a_c` per channel (PReLU-net, He et al.
    /// 2015), initialised to 0.25 as PyTorch does.
    PRelu,
}

/// What `archc layers` and the docs say of one activation.
pub struct ActivationDoc {
    pub name: &'static str,
    pub definition: &'static str,
    pub flops: &'static str,
    /// What training keeps (the value PyTorch's autograd saves, in-place as torchvision's
    /// models use it) and the input gradient's FLOPs per element.
    pub training: &'static str,
}

/// Every activation, in the order of `ALL_NAMES`.
pub const DOCS: &[ActivationDoc] = &[
    ActivationDoc { name: "relu", definition: "max(x, 0)", flops: "1 per element (a comparison)", training: "keeps its output (in place or not, ReLU saves its result); backward 1 per element (a comparison)" },
    ActivationDoc { name: "relu6", definition: "min(max(x, 0), 6)", flops: "2 per element (two comparisons)", training: "keeps its input (hardtanh saves it, in place as torchvision's MobileNetV2 too); backward 2 per element (two comparisons)" },
    ActivationDoc { name: "sigmoid", definition: "1 / (1 + exp(-x))", flops: "3 per element (exp(−x), add, divide; as softmax and the Highway gate count it)", training: "keeps its output; backward 3 per element (dy·y·(1 − y))" },
    ActivationDoc { name: "hardsigmoid", definition: "min(max(x + 3, 0), 6) / 6", flops: "4 per element (add, two comparisons, divide)", training: "keeps its input; backward 3 per element (two comparisons, dy/6)" },
    ActivationDoc { name: "silu", definition: "x * sigmoid(x)", flops: "4 per element (sigmoid's 3, a multiply)", training: "keeps its input (in place too: PyTorch keeps a copy); backward 8 per element (dy·s·(1 + x·(1 − s)) with s = sigmoid(x) again)" },
    ActivationDoc { name: "hardswish", definition: "x * hardsigmoid(x)", flops: "5 per element (hardsigmoid's 4, a multiply)", training: "keeps its input (in place too); backward 5 per element (two comparisons, dy·(x/3 + 1/2))" },
    ActivationDoc { name: "gelu", definition: "x * Φ(x) = x/2 * (1 + erf(x/√2)); approximate: tanh gives x/2 * (1 + tanh(√(2/π) (x + 0.044715 x³)))", flops: "5 per element (divide, erf, add, two multiplies); 9 with approximate: tanh", training: "keeps its input; backward 11 per element (dy·(Φ(x) + x·φ(x))); 19 with approximate: tanh" },
    ActivationDoc { name: "tanh", definition: "tanh(x)", flops: "1 per element", training: "keeps its output; backward 3 per element (dy·(1 − y²))" },
    ActivationDoc { name: "leaky_relu", definition: "max(x, 0) + slope * min(x, 0), slope 0.01 unless given", flops: "2 per element (a comparison, a multiply)", training: "keeps its output (in place, as torchvision-style models use it; not in place PyTorch keeps the input); backward 2 per element" },
    ActivationDoc { name: "prelu", definition: "max(x, 0) + a_c * min(x, 0), one learned a_c per channel (initialised to 0.25)", flops: "2 per element; C parameters", training: "keeps its input; backward 2 per element for the input, 2 for the slopes (a multiply, a sum)" },
];

/// The activation words, as the grammar's `layer_kind` has them.
pub const ALL_NAMES: &[&str] = &[
    "relu",
    "relu6",
    "sigmoid",
    "hardsigmoid",
    "silu",
    "hardswish",
    "gelu",
    "tanh",
    "leaky_relu",
    "prelu",
];

/// PyTorch's default slope of `nn.LeakyReLU`.
pub const LEAKY_SLOPE: f64 = 0.01;
/// PyTorch's initial PReLU slope.
pub const PRELU_INIT: f64 = 0.25;

impl Activation {
    /// The activation a word names, with its default arguments.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "relu" => Activation::Relu,
            "relu6" => Activation::Relu6,
            "sigmoid" => Activation::Sigmoid,
            "hardsigmoid" => Activation::HardSigmoid,
            "silu" => Activation::Silu,
            "hardswish" => Activation::HardSwish,
            "gelu" => Activation::Gelu { tanh: false },
            "tanh" => Activation::Tanh,
            "leaky_relu" => Activation::LeakyRelu { slope: LEAKY_SLOPE },
            "prelu" => Activation::PRelu,
            _ => return None,
        })
    }

    /// The word of this activation (its layer kind and report name).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Relu6 => "relu6",
            Activation::Sigmoid => "sigmoid",
            Activation::HardSigmoid => "hardsigmoid",
            Activation::Silu => "silu",
            Activation::HardSwish => "hardswish",
            Activation::Gelu { .. } => "gelu",
            Activation::Tanh => "tanh",
            Activation::LeakyRelu { .. } => "leaky_relu",
            Activation::PRelu => "prelu",
        }
    }

    /// The lowered node's kind, named after Burn's and PyTorch's modules.
    pub fn lowered_name(self) -> &'static str {
        match self {
            Activation::Relu => "Relu",
            Activation::Relu6 => "Relu6",
            Activation::Sigmoid => "Sigmoid",
            Activation::HardSigmoid => "HardSigmoid",
            Activation::Silu => "Silu",
            Activation::HardSwish => "HardSwish",
            Activation::Gelu { .. } => "Gelu",
            Activation::Tanh => "Tanh",
            Activation::LeakyRelu { .. } => "LeakyRelu",
            Activation::PRelu => "PRelu",
        }
    }

    /// The arguments a lowered node and the per-layer report show (`slope=0.2`).
    pub fn args_text(self) -> String {
        match self {
            Activation::Gelu { tanh: true } => "approximate=tanh".into(),
            Activation::LeakyRelu { slope } => format!("slope={slope}"),
            _ => String::new(),
        }
    }

    /// FLOPs per element (see [`DOCS`]).
    pub fn flops_per_element(self) -> u128 {
        match self {
            Activation::Relu | Activation::Tanh => 1,
            Activation::Relu6 | Activation::LeakyRelu { .. } | Activation::PRelu => 2,
            Activation::Sigmoid => 3,
            Activation::HardSigmoid | Activation::Silu => 4,
            Activation::HardSwish => 5,
            Activation::Gelu { tanh: false } => 5,
            Activation::Gelu { tanh: true } => 9,
        }
    }

    /// The input gradient's FLOPs per element (see [`DOCS`], `training`).
    pub fn backward_flops_per_element(self) -> u128 {
        match self {
            Activation::Relu => 1,
            Activation::Relu6 | Activation::LeakyRelu { .. } | Activation::PRelu => 2,
            Activation::Sigmoid | Activation::HardSigmoid | Activation::Tanh => 3,
            Activation::HardSwish => 5,
            Activation::Silu => 8,
            Activation::Gelu { tanh: false } => 11,
            Activation::Gelu { tanh: true } => 19,
        }
    }

    /// Whether PyTorch's autograd keeps the output (else the input) for the backward, in
    /// place where torchvision's models run it in place (see [`DOCS`], `training`).
    pub fn keeps_output(self) -> bool {
        matches!(
            self,
            Activation::Relu
                | Activation::Sigmoid
                | Activation::Tanh
                | Activation::LeakyRelu { .. }
        )
    }

    /// The learned parameters' shape on an input with `channels` channels (PReLU only).
    pub fn param_shapes(self, channels: u64) -> Vec<(&'static str, Vec<u64>)> {
        match self {
            Activation::PRelu => vec![("weight", vec![channels])],
            _ => Vec::new(),
        }
    }
}

pub static SIGNATURE: Signature = plain("relu");

const fn plain(name: &'static str) -> Signature {
    Signature {
        positional: &[],
        required: 0,
        named: &[],
        example: name,
    }
}

/// The signatures of the activations without arguments, in the order of [`ALL_NAMES`].
static PLAIN: [Signature; 10] = [
    plain("relu"),
    plain("relu6"),
    plain("sigmoid"),
    plain("hardsigmoid"),
    plain("silu"),
    plain("hardswish"),
    plain("gelu"),
    plain("tanh"),
    plain("leaky_relu"),
    plain("prelu"),
];

pub static GELU_SIGNATURE: Signature = Signature {
    positional: &[],
    required: 0,
    named: &["approximate"],
    example: "gelu approximate: tanh",
};

pub static LEAKY_SIGNATURE: Signature = Signature {
    positional: &["slope"],
    required: 0,
    named: &[],
    example: "leaky_relu 0.2",
};

pub fn signature(name: &str) -> &'static Signature {
    match name {
        "gelu" => &GELU_SIGNATURE,
        "leaky_relu" => &LEAKY_SIGNATURE,
        _ => ALL_NAMES
            .iter()
            .position(|n| *n == name)
            .map_or(&SIGNATURE, |i| &PLAIN[i]),
    }
}

/// The unit of the activation `name` (the fields `archc layers` prints come from [`DOCS`]).
pub fn unit(name: &str) -> Option<Unit> {
    let doc = DOCS.iter().find(|d| d.name == name)?;
    fn build_op(name: &str, a: &mut Args, _: &LayerDefaults) -> Option<Vec<Op>> {
        build(name, a).map(|act| vec![Op::Act(act)])
    }
    Some(Unit {
        name: doc.name,
        signature: signature(name),
        defaults: match name {
            "gelu" => &[(
                "approximate",
                "none (exact erf form); tanh for the tanh approximation",
            )],
            "leaky_relu" => &[("slope", "0.01")],
            _ => &[],
        },
        summary: doc.definition,
        shape_rule: "the input's shape",
        cost_rule: doc.flops,
        training_rule: doc.training,
        build: build_op,
        rules: None,
    })
}

/// The activation a layer line `name args` builds.
pub fn build(name: &str, a: &mut Args) -> Option<Activation> {
    let act = Activation::parse(name)?;
    Some(match act {
        Activation::Gelu { .. } => match a.named("approximate") {
            Some(_) => Activation::Gelu {
                tanh: a.word("approximate", "gelu approximation", &["none", "tanh"])? == "tanh",
            },
            None => act,
        },
        Activation::LeakyRelu { .. } => match a.get(0, "") {
            Some(_) => {
                let (slope, span) = a.float(0, "leaky_relu slope")?;
                if !slope.is_finite() || slope < 0.0 {
                    a.errors.push(CompileError::BadValue {
                        what: "leaky_relu slope".into(),
                        found: format!("the decimal {slope}"),
                        at: at(span),
                        expected: "a slope of zero or more".into(),
                        help: "write the negative-side slope, such as `leaky_relu 0.2`".into(),
                    });
                    return None;
                }
                Activation::LeakyRelu { slope }
            }
            None => act,
        },
        other => other,
    })
}

/// A conv's or fc's `act:` argument: an activation word or `none`; `default` when absent.
/// A word that is no activation gets the list and the closest name, as the `act` setting does.
pub fn act_argument(a: &mut Args, default: Option<Activation>) -> Option<Option<Activation>> {
    let Some((v, span)) = a.named("act") else {
        return Some(default);
    };
    match &v {
        ArgVal::Word(w) if w == "none" => Some(None),
        ArgVal::Word(w) if Activation::parse(w).is_some() => Some(Activation::parse(w)),
        other => {
            a.errors
                .push(unknown(&other.describe(), word_of(other), span));
            None
        }
    }
}

fn word_of(v: &ArgVal) -> Option<&str> {
    match v {
        ArgVal::Word(w) | ArgVal::Block(w) => Some(w),
        _ => None,
    }
}

/// The diagnostic for a value that names no activation (argument and setting alike).
pub fn unknown(found: &str, word: Option<&str>, span: archc_grammar::ast::Span) -> CompileError {
    let names: Vec<String> = ALL_NAMES.iter().map(|s| s.to_string()).collect();
    let list = format!("{} or none", ALL_NAMES.join(", "));
    let help = match word {
        Some(w) => crate::resolve::suggest(w, names.iter(), &format!("write one of: {list}")),
        None => format!("write one of: {list}"),
    };
    let help = if help.starts_with("did") {
        format!("{help} (the activations are {list})")
    } else {
        help
    };
    CompileError::BadValue {
        what: "act".into(),
        found: found.to_string(),
        at: at(span),
        expected: format!("one of {list}"),
        help,
    }
}

/// Shape and cost: the shape is kept; FLOPs per element as [`DOCS`] says; PReLU's parameters.
pub fn infer(act: Activation, input: Shape) -> (Shape, Cost) {
    let params = super::count(&act.param_shapes(input.channels()));
    (
        input,
        Cost {
            params,
            flops: act.flops_per_element() * input.numel(),
            ..Cost::default()
        },
    )
}

/// Training: the value [`Activation::keeps_output`] names; the input gradient's FLOPs per
/// [`Activation::backward_flops_per_element`]; PReLU's slopes' gradient, 2 per element.
pub fn training(act: Activation, input: Shape) -> TrainCost {
    let e = input.numel();
    let keep = if act.keeps_output() {
        Keep::Output
    } else {
        Keep::Input(0)
    };
    let mut t = TrainCost::elementwise(Some(keep), act.backward_flops_per_element(), e);
    if act == Activation::PRelu {
        t.weight_grad = Work::elementwise(2, e);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_op_per_element() {
        let (_, c) = infer(Activation::Relu, Shape::Flat { n: 10 });
        assert_eq!(c.flops, 10);
        assert_eq!(c.params, 0);
    }

    #[test]
    fn relu6_clamps_twice_per_element() {
        let (s, c) = infer(Activation::Relu6, Shape::Map { c: 2, h: 3, w: 3 });
        assert_eq!(s, Shape::Map { c: 2, h: 3, w: 3 });
        assert_eq!((c.params, c.flops), (0, 36));
    }

    #[test]
    fn prelu_learns_one_slope_per_channel() {
        let (_, c) = infer(Activation::PRelu, Shape::Map { c: 64, h: 7, w: 7 });
        assert_eq!((c.params, c.flops), (64, 2 * 64 * 49));
    }

    #[test]
    fn every_name_parses_back_and_is_documented() {
        assert_eq!(ALL_NAMES.len(), DOCS.len());
        for (n, d) in ALL_NAMES.iter().zip(DOCS) {
            assert_eq!(Activation::parse(n).map(Activation::name), Some(*n));
            assert_eq!(d.name, *n);
        }
    }

    #[test]
    fn the_documented_flops_are_the_counted_ones() {
        for d in DOCS {
            let act = Activation::parse(d.name).unwrap();
            let n = act.flops_per_element().to_string();
            assert!(
                d.flops.starts_with(&format!("{n} per element")),
                "{}: {}",
                d.name,
                d.flops
            );
        }
        assert_eq!(Activation::Gelu { tanh: true }.flops_per_element(), 9);
        assert!(DOCS[6].flops.contains("9 with approximate: tanh"));
    }

    #[test]
    fn the_documented_training_rules_are_the_applied_ones() {
        for d in DOCS {
            let act = Activation::parse(d.name).unwrap();
            let keeps = if act.keeps_output() {
                "keeps its output"
            } else {
                "keeps its input"
            };
            assert!(d.training.starts_with(keeps), "{}: {}", d.name, d.training);
            let n = format!("backward {} per element", act.backward_flops_per_element());
            assert!(d.training.contains(&n), "{}: {}", d.name, d.training);
        }
        assert!(DOCS[6].training.contains("19 with approximate: tanh"));
    }

    #[test]
    fn every_activation_word_is_a_layer_kind_of_the_grammar() {
        for n in ALL_NAMES {
            assert!(archc_grammar::keywords::LAYER_KINDS.contains(n), "{n}");
        }
    }
}
