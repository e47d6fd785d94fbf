//! PyTorch export (`archc export --format pytorch`): a lowered graph becomes a readable Python
//! module defining `build() -> torch.nn.Module`, built from `torch.nn` modules, whose
//! `state_dict()` keys are archc's weight names (torchvision's for networks that set them), and
//! whose `forward` is one line per node in the `.arch` file's order, with a comment per stage.
//!
//! Each op writes its own PyTorch form ([`NodeOp::pytorch`], before its `rust` in
//! `runtime/src/ops/`): the module (or parameters) it holds and its forward expression. Here is
//! the file around them: the weight-name tree (a module placed by dotted name creates the
//! containers above it), the forward's lines, helper functions, and the load hook that takes
//! torchvision's ConvNeXt pointwise `nn.Linear` weights `[out, in]` into the 1x1 convs
//! `[out, in, 1, 1]` archc lowers them to. `scripts/pytorch_export_check.py` checks every zoo
//! network against `archc forward` and torchvision.

use std::collections::HashSet;
use std::fmt::Write;

use archc_compiler::lower::{LoweredGraph, LoweredOp};

use crate::ops::{self, NodeOp};

/// What an op's PyTorch form is written from.
pub struct Py<'a> {
    /// The node's place in the module as a Python expression (`self.layer1[0].conv1`): its
    /// module, or the container holding its parameters.
    pub module: &'a str,
    /// The inputs' variables (`x3`) with their tensor rank (4 for maps, 2 for vectors).
    pub inputs: &'a [(String, usize)],
    /// The output's shape per sample (`[C, H, W]` or `[F]`).
    pub output: &'a [usize],
}

impl Py<'_> {
    /// Input `k`'s variable.
    pub fn x(&self, k: usize) -> &str {
        &self.inputs[k].0
    }

    /// Input `k`'s rank.
    pub fn rank(&self, k: usize) -> usize {
        self.inputs[k].1
    }

    /// The output's rank.
    pub fn out_rank(&self) -> usize {
        if self.output.len() == 3 {
            4
        } else {
            2
        }
    }

    /// Every input at the output's rank: a map flattened for a vector output, a vector `[N, F]`
    /// as `[N, F, 1, 1]` for a map output (as the runtime's `Value` does).
    pub fn xs(&self) -> Vec<String> {
        let out = self.out_rank();
        self.inputs
            .iter()
            .map(|(x, r)| match (*r, out) {
                (4, 2) => format!("{x}.flatten(1)"),
                (2, 4) => format!("{x}[:, :, None, None]"),
                _ => x.clone(),
            })
            .collect()
    }

    /// `{module}({input 0})`.
    pub fn call(&self) -> String {
        format!("{}({})", self.module, self.x(0))
    }
}

/// One op's PyTorch form.
#[derive(Default)]
pub struct Torch {
    /// A module placed at the node's weight name (`nn.Conv2d(3, 16, 3, padding=1, bias=False)`).
    pub module: Option<String>,
    /// Parameters placed on the container at the node's name: (name, initialiser).
    pub params: Vec<(&'static str, String)>,
    /// The forward expression.
    pub expr: String,
    /// Python functions the expression calls (each written once, before the class).
    pub helpers: Vec<&'static str>,
}

impl Torch {
    /// An expression without a module.
    pub fn expr(expr: String) -> Self {
        Torch {
            expr,
            ..Torch::default()
        }
    }

    /// A module initialised by `init`, used by `expr`.
    pub fn module(init: String, expr: String) -> Self {
        Torch {
            module: Some(init),
            expr,
            ..Torch::default()
        }
    }
}

/// A Python float literal (`1e-05`, `0.1`, `-3.0`).
pub fn float(x: f64) -> String {
    let s = format!("{x:?}");
    if s.contains(['.', 'e', 'i', 'N']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// A pair as PyTorch takes it: `3` when both are equal, else `(3, 1)`.
pub fn pair(p: [usize; 2]) -> String {
    if p[0] == p[1] {
        p[0].to_string()
    } else {
        format!("({}, {})", p[0], p[1])
    }
}

/// `nn.Module`'s own attributes: a weight-name part spelled as one of these (or not an
/// identifier, or a Python keyword) is reached by `[name]`, not `.name`.
const MODULE_ATTRIBUTES: &[&str] = &[
    "T_destination",
    "add_module",
    "apply",
    "bfloat16",
    "buffers",
    "call_super_init",
    "children",
    "compile",
    "cpu",
    "cuda",
    "double",
    "dump_patches",
    "eval",
    "extra_repr",
    "float",
    "forward",
    "get_buffer",
    "get_extra_state",
    "get_parameter",
    "get_submodule",
    "half",
    "ipu",
    "load_state_dict",
    "modules",
    "mtia",
    "named_buffers",
    "named_children",
    "named_modules",
    "named_parameters",
    "parameters",
    "register_backward_hook",
    "register_buffer",
    "register_forward_hook",
    "register_forward_pre_hook",
    "register_full_backward_hook",
    "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook",
    "register_module",
    "register_parameter",
    "register_state_dict_post_hook",
    "register_state_dict_pre_hook",
    "requires_grad_",
    "set_extra_state",
    "set_submodule",
    "share_memory",
    "state_dict",
    "to",
    "to_empty",
    "train",
    "training",
    "type",
    "xpu",
    "zero_grad",
    "place",
    "place_parameter",
];

const PYTHON_KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

/// `layer1.0.conv1` → `self.layer1[0].conv1`.
pub fn attribute_path(name: &str) -> String {
    let mut s = String::from("self");
    for part in name.split('.') {
        let ident = part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !part.starts_with("__");
        if !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()) {
            let _ = write!(s, "[{part}]");
        } else if ident && !MODULE_ATTRIBUTES.contains(&part) && !PYTHON_KEYWORDS.contains(&part) {
            let _ = write!(s, ".{part}");
        } else {
            let _ = write!(s, "[{part:?}]");
        }
    }
    s
}

/// `cifar_resnet20` → `CifarResnet20` (the class name; the same rule as codegen's).
fn class_name(network: &str) -> String {
    crate::codegen::type_name(network)
}

/// The tensor rank of a node's value: 4 for maps, 2 for vectors.
fn rank(l: &LoweredGraph, id: usize) -> usize {
    if l.nodes[id].output.len() == 3 {
        4
    } else {
        2
    }
}

/// The last node the forward needs: the main logits, or the last of several outputs.
fn last_node(l: &LoweredGraph) -> usize {
    l.outputs.iter().map(|o| o.node).fold(l.logits, usize::max)
}

/// Each node's PyTorch form up to the last output (none for the input), or why a node has none.
fn node_forms(l: &LoweredGraph) -> Vec<Result<Option<Torch>, String>> {
    l.nodes
        .iter()
        .take(last_node(l) + 1)
        .map(|n| {
            let op: Option<Box<dyn NodeOp>> = ops::node_op(&n.op)?;
            let Some(op) = op else { return Ok(None) };
            let inputs: Vec<(String, usize)> = n
                .inputs
                .iter()
                .map(|&j| (format!("x{j}"), rank(l, j)))
                .collect();
            let module = attribute_path(&n.name);
            let py = Py {
                module: &module,
                inputs: &inputs,
                output: &n.output,
            };
            op.pytorch(&py).map(Some)
        })
        .collect()
}

/// Why the network cannot be exported (a node without a PyTorch form, or two nodes whose weight
/// names clash in the module tree), or `None`.
pub fn unsupported(l: &LoweredGraph) -> Option<String> {
    let forms = node_forms(l);
    if let Some((n, why)) = forms
        .iter()
        .zip(&l.nodes)
        .find_map(|(r, n)| r.as_ref().err().map(|why| (n, why)))
    {
        return Some(format!(
            "`{}` has a {} node (`{}`), which has no PyTorch form ({why})",
            l.network,
            n.op.kind(),
            n.name
        ));
    }
    // Every placed name: a module's is a leaf; a parameter's container may hold others.
    let mut leaves: Vec<&str> = Vec::new();
    let mut params: Vec<String> = Vec::new();
    for (r, n) in forms.iter().zip(&l.nodes) {
        let Ok(Some(t)) = r else { continue };
        if t.module.is_some() {
            leaves.push(&n.name);
        }
        for (p, _) in &t.params {
            params.push(format!("{}.{p}", n.name));
        }
    }
    // A name clashes when it repeats a module's, or lies inside one (`a.b` under module `a`).
    let mut modules: HashSet<&str> = HashSet::new();
    for a in &leaves {
        if !modules.insert(a) {
            return Some(format!(
                "`{}`: two modules have the weight name `{a}`",
                l.network
            ));
        }
    }
    let names = leaves
        .iter()
        .map(|a| (*a, "a module"))
        .chain(params.iter().map(|p| (p.as_str(), "a parameter")));
    for (name, what) in names {
        for (i, _) in name.match_indices('.') {
            let outer = &name[..i];
            if modules.contains(outer) {
                return Some(format!(
                    "`{}`: the weight names `{outer}` (a module) and `{name}` ({what}) cannot both be in one PyTorch module tree",
                    l.network
                ));
            }
        }
    }
    None
}

const PRELUDE: &str = r#"import torch
import torch.nn.functional as F
from torch import nn


class Tree(nn.Module):
    """A container of the weight-name tree: `t[0]` and `t["name"]` are its child of that name."""

    def __getitem__(self, key):
        return self._modules[str(key)]

    def _parent(self, name):
        *path, last = name.split(".")
        node = self
        for part in path:
            if part not in node._modules:
                node._modules[part] = Tree()
            node = node._modules[part]
        return node, last

    def place(self, name, module):
        """Put `module` at the dotted weight name `name`, creating the containers above it."""
        parent, last = self._parent(name)
        parent._modules[last] = module

    def place_parameter(self, name, value):
        """Put a parameter at the dotted weight name `name`."""
        parent, last = self._parent(name)
        parent._parameters[last] = nn.Parameter(value)
"#;

const POINTWISE_HOOK: &str = r#"
def pointwise_as_linear(module, state_dict, prefix, *args):
    """Load an `nn.Linear` weight [out, in] (torchvision's ConvNeXt keeps its pointwise layers
    so) into a 1x1 conv's weight [out, in, 1, 1]."""
    for name, p in module.named_parameters():
        w = state_dict.get(prefix + name)
        if w is not None and p.dim() == 4 and p.shape[2:] == (1, 1) and w.dim() == 2:
            state_dict[prefix + name] = w[:, :, None, None]
"#;

/// A stage's comment for the forward: its name and its line of the `.arch` file.
pub struct StageNote {
    pub name: String,
    pub text: String,
}

/// Generate the Python module. `stages` gives each lowered node's stage (from
/// `lower::lower_traced`; empty for no stage comments); `origin` is written in the docstring.
/// Call [`unsupported`] first: a node without a PyTorch form is written as a `raise`.
pub fn generate(l: &LoweredGraph, stages: &[Option<StageNote>], origin: &str) -> String {
    let forms = node_forms(l);
    let mut helpers: Vec<&str> = Vec::new();
    for t in forms.iter().flatten().flatten() {
        for h in &t.helpers {
            if !helpers.contains(h) {
                helpers.push(h);
            }
        }
    }
    let pointwise = l.nodes.iter().any(|n| {
        matches!(
            n.op,
            LoweredOp::Conv2d {
                kernel_size: [1, 1],
                groups: 1,
                ..
            }
        )
    });
    let dims = |d: &[usize]| {
        d.iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let class = class_name(&l.network);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\"\"\"`{}` as a PyTorch module, written by `archc export --format pytorch` from {origin}.\n\nInput [N, {}], logits [N, {}], {} trainable parameters. `build()` gives the module; its\nstate_dict() keys are archc's weight names, so archc's weights (and torchvision's, for a\nnetwork with torchvision's names) load with strict=True. Do not edit; export again.\n\"\"\"\n",
        l.network,
        dims(&l.input),
        dims(&l.output),
        l.params
    );
    s.push_str(PRELUDE);
    if pointwise {
        s.push_str(POINTWISE_HOOK);
    }
    for h in &helpers {
        s.push('\n');
        s.push_str(h);
    }
    let _ = writeln!(
        s,
        "\n\nclass {class}(Tree):\n    def __init__(self):\n        super().__init__()"
    );
    for (t, n) in forms.iter().zip(&l.nodes) {
        let Ok(Some(t)) = t else { continue };
        if let Some(m) = &t.module {
            let _ = writeln!(s, "        self.place({:?}, {m})", n.name);
        }
        for (p, init) in &t.params {
            let _ = writeln!(
                s,
                "        self.place_parameter({:?}, {init})",
                format!("{}.{p}", n.name)
            );
        }
    }
    if pointwise {
        s.push_str("        self.register_load_state_dict_pre_hook(pointwise_as_linear)\n");
    }
    let several = !l.outputs.is_empty();
    if several {
        let main = &l.outputs[0].name;
        let _ = writeln!(
            s,
            "\n    def forward(self, x0):\n        \"\"\"The main output's logits (`{main}`), as archc's forward.\"\"\"\n        return self.forward_outputs(x0)[{main:?}]"
        );
        let _ = writeln!(
            s,
            "\n    def forward_outputs(self, x0):\n        \"\"\"Every output's logits by name, the main one first.\"\"\""
        );
    } else {
        let _ = writeln!(s, "\n    def forward(self, x0):");
    }
    let mut stage: Option<&str> = None;
    for (i, (t, n)) in forms.iter().zip(&l.nodes).enumerate() {
        let expr = match t {
            Ok(None) => continue,
            Ok(Some(t)) => t.expr.clone(),
            Err(why) => format!("_unsupported({:?})", format!("{}: {why}", n.op.kind())),
        };
        if let Some(Some(note)) = stages.get(i) {
            if stage != Some(note.name.as_str()) {
                stage = Some(&note.name);
                let _ = writeln!(s, "        # {}", note.text);
            }
        }
        let _ = writeln!(s, "        x{} = {expr}  # {}", n.id, n.name);
    }
    let out = |id: usize| {
        if rank(l, id) == 4 {
            format!("x{id}.flatten(1)")
        } else {
            format!("x{id}")
        }
    };
    if several {
        let items: Vec<String> = l
            .outputs
            .iter()
            .map(|o| format!("{:?}: {}", o.name, out(o.node)))
            .collect();
        let _ = writeln!(s, "        return {{{}}}", items.join(", "));
    } else {
        let _ = writeln!(s, "        return {}", out(l.logits));
    }
    let _ = writeln!(
        s,
        "\n\ndef build():\n    \"\"\"`{}` with PyTorch's default initialisation (load archc's or torchvision's weights with\n    `load_state_dict(..., strict=True)`).\"\"\"\n    return {class}()",
        l.network
    );
    if forms.iter().any(Result::is_err) {
        s.push_str("\n\ndef _unsupported(what):\n    raise NotImplementedError(f\"archc export cannot write {what}\")\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_paths_are_python() {
        assert_eq!(attribute_path("layer1.0.conv1"), "self.layer1[0].conv1");
        assert_eq!(attribute_path("features.3"), "self.features[3]");
        assert_eq!(attribute_path("train.0.in"), "self[\"train\"][0][\"in\"]");
        assert_eq!(attribute_path("a-b"), "self[\"a-b\"]");
    }

    /// Two weight names where one is a module inside the other cannot be one module tree: the
    /// export stops with a message naming both (no zoo network has such names).
    #[test]
    fn clashing_weight_names_are_refused() {
        use archc_compiler::lower::LoweredNode;
        let conv = |channels: [usize; 2]| LoweredOp::Conv2d {
            channels,
            kernel_size: [1, 1],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            bias: false,
        };
        let node = |id: usize, name: &str, op: LoweredOp, c: usize| LoweredNode {
            id,
            name: name.into(),
            op,
            inputs: if id == 0 { vec![] } else { vec![id - 1] },
            output: vec![c, 4, 4],
        };
        let mut l = LoweredGraph {
            network: "n".into(),
            input: vec![3, 4, 4],
            output: vec![8, 4, 4],
            params: 3 * 8 + 8 * 8,
            nodes: vec![
                node(0, "input", LoweredOp::Input, 3),
                node(1, "a", conv([3, 8]), 8),
                node(2, "a.b", conv([8, 8]), 8),
            ],
            logits: 2,
            softmax: false,
            outputs: vec![],
        };
        let why = unsupported(&l).expect("a clash");
        assert!(why.contains("`a`") && why.contains("`a.b`"), "{why}");
        l.nodes[2].name = "ab".into();
        assert_eq!(unsupported(&l), None);
        assert!(generate(&l, &[], "a test")
            .contains("self.place(\"ab\", nn.Conv2d(8, 8, 1, bias=False))"));
    }

    #[test]
    fn python_literals() {
        assert_eq!(float(1e-5), "1e-5");
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(3.0), "3.0");
        assert_eq!(pair([3, 3]), "3");
        assert_eq!(pair([3, 1]), "(3, 1)");
    }
}
