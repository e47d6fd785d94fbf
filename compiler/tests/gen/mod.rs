//! Random valid `.arch` networks for property tests, with the figures they must have computed
//! independently of the compiler (from the description, not from the graph).
//!
//! A [`Net`] is a ResNet-shaped description: a stem conv (and maybe a 2x2 max pool), one to
//! four stages, and a global average pool, maybe a dropout, and `fc classes`. A stage is a
//! repeated block (`basic`, `bottleneck`, `bottleneck_tv` from `architectures/blocks.arch`, or
//! a block generated inline) or a line of its own holding a merge. Strides 1 to 3, shortcut
//! options none/A/B/C per network and per stage, `norm bn` or `none`. Sometimes auxiliary
//! heads (`auxN from stageK, ...`) and an `outputs` line.
//!
//! Inline blocks and stage lines are lists of [`Item`]s: convs, pools, nested `basic` calls
//! and merges (`concat` of 2–4 branches, `concat split`, `add` and `max` of branches that keep
//! one shape, `mul` with a squeeze-and-excitation gate), nested, with widths `a*c + b*in.c`
//! and gate widths written with `ceil`, `floor`, `round`, `max`, `min`, `divisible` and
//! decimals. [`Net::text`] writes it as `.arch`; [`Net::params`], [`Net::stage_outputs`],
//! [`Net::convs_count`] and [`Net::bns_count`] count what it must have.
//!
//! Shared by `compiler/tests/properties.rs` and `runtime/tests/properties.rs` (`#[path]`).
#![allow(dead_code)]

use std::fmt::Write as _;

use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortcut {
    None,
    A,
    B,
    C,
}

impl Shortcut {
    fn word(self) -> &'static str {
        match self {
            Shortcut::None => "none",
            Shortcut::A => "A",
            Shortcut::B => "B",
            Shortcut::C => "C",
        }
    }
}

/// A channel count `a*c + b*in.c`: `c` is the block's parameter (on a stage line, the stage's
/// width, written as a number) and `in.c` the channels of the block's (stage line's) input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Width {
    pub a: u64,
    pub b: u64,
}

impl Width {
    const C: Width = Width { a: 1, b: 0 };

    fn value(self, c: u64, inc: u64) -> u64 {
        self.a * c + self.b * inc
    }

    fn plus(self, o: Width) -> Width {
        Width {
            a: self.a + o.a,
            b: self.b + o.b,
        }
    }

    /// The expression: in a block `2*c + in.c`; on a stage line `c` is written as its value.
    fn text(self, ctx: Ctx) -> String {
        let mut terms = Vec::new();
        if self.a > 0 {
            terms.push(match ctx.line {
                true => (self.a * ctx.c).to_string(),
                false if self.a == 1 => "c".to_string(),
                false => format!("{}*c", self.a),
            });
        }
        if self.b > 0 {
            terms.push(match self.b {
                1 => "in.c".to_string(),
                b => format!("{b}*in.c"),
            });
        }
        terms.join(" + ")
    }

    /// As a factor of a larger expression.
    fn factor(self, ctx: Ctx) -> String {
        let t = self.text(ctx);
        if t.contains(' ') {
            format!("({t})")
        } else {
            t
        }
    }
}

/// Where an item is written: in a block (`c` and `stride` are names) or on a stage line (they
/// are numbers).
#[derive(Debug, Clone, Copy)]
struct Ctx {
    line: bool,
    c: u64,
    stride: u64,
}

impl Ctx {
    fn stride(self) -> String {
        if self.line {
            self.stride.to_string()
        } else {
            "stride".to_string()
        }
    }
}

/// One item of a block, a stage line or a branch. `strided`: it takes the block's `stride`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `conv KxK, W`
    Conv {
        kernel: u64,
        width: Width,
        strided: bool,
    },
    /// `basic(mult*c)`: two 3x3 convs, the stride on the first.
    Basic {
        mult: u64,
        strided: bool,
    },
    /// `maxpool 3x3, stride: s, padding: 1`: keeps the channels, `n` to `ceil(n / s)`.
    Pool {
        strided: bool,
    },
    Merge(Merge),
}

impl Item {
    fn strided(&self) -> bool {
        match self {
            Item::Conv { strided, .. } | Item::Basic { strided, .. } | Item::Pool { strided } => {
                *strided
            }
            Item::Merge(m) => m.strided,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeKind {
    Concat,
    Add,
    Max,
    Mul,
}

impl MergeKind {
    fn word(self) -> &'static str {
        match self {
            MergeKind::Concat => "concat",
            MergeKind::Add => "add",
            MergeKind::Max => "max",
            MergeKind::Mul => "mul",
        }
    }
}

/// A squeeze-and-excitation gate over `C` channels: global average pool, a reduction to `R`
/// (with a ReLU), back to `C` (with a sigmoid), by fcs or by 1x1 convs with bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// The merge input's channels, `C`.
    pub width: Width,
    pub convs: bool,
    /// How `R` is written (see [`Gate::reduced`]).
    pub reduce: u8,
}

impl Gate {
    /// `R` from `C`, computed here, and its expression.
    fn reduced(self, c: u64) -> u64 {
        match self.reduce {
            0 => (c / 4).max(1), // max(1, C/4)
            1 => c.div_ceil(4),  // ceil(C*0.25)
            2 => divisible(c as f64 * 0.5, 2.0),
            3 => {
                // max(1, round(C*0.5)), halves to even
                let half = c / 2;
                let r = if c % 2 == 1 && half % 2 == 1 {
                    half + 1
                } else {
                    half
                };
                r.max(1)
            }
            _ => (c / 2).clamp(1, 8), // min(8, max(1, C/2))
        }
    }

    fn reduced_text(self, w: String) -> String {
        match self.reduce {
            0 => format!("max(1, {w}/4)"),
            1 => format!("ceil({w}*0.25)"),
            2 => format!("divisible({w}*0.5, 2)"),
            3 => format!("max(1, round({w}*0.5))"),
            _ => format!("min(8, max(1, {w}/2))"),
        }
    }
}

/// torchvision's `_make_divisible(v, d)`, written from its Python source.
fn divisible(v: f64, d: f64) -> u64 {
    let mut n = d.max(((v + d / 2.0) / d).floor() * d);
    if n < 0.9 * v {
        n += d;
    }
    n as u64
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Branch {
    /// A name alone.
    Identity,
    Items(Vec<Item>),
    Gate(Gate),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    pub kind: MergeKind,
    pub split: bool,
    pub branches: Vec<Branch>,
    /// Every branch downsamples by the stride once.
    pub strided: bool,
    /// Written on one line, branches separated by `;`.
    pub one_line: bool,
}

/// A block written inline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineBlock {
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    Basic,
    Bottleneck,
    BottleneckTv,
    /// Index into [`Net::blocks`].
    Inline(usize),
    /// Items written on the stage line itself (index into [`Net::lines`]): no call, no
    /// repeat, no shortcut; `width` is the number written for `c`, `stride` for `stride`.
    Line(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub block: Block,
    pub width: u64,
    pub repeat: u64,
    pub stride: u64,
    pub shortcut: Option<Shortcut>,
}

/// `auxN from STAGE, [conv 1x1, W,] avgpool, fc classes`, written after the stage it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aux {
    /// 0: the stem; k: stage k.
    pub from: usize,
    pub conv: Option<u64>,
    /// Its weight in `outputs` (None: not written, 1).
    pub weight: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Net {
    /// `[C, H, W]`
    pub input: [u64; 3],
    pub classes: u64,
    pub shortcut: Shortcut,
    /// Written as a network derived from a plain base (`network gen = base with shortcut X`).
    pub derived: bool,
    pub norm: bool,
    pub stem_width: u64,
    pub stem_pool: bool,
    pub blocks: Vec<InlineBlock>,
    pub lines: Vec<Vec<Item>>,
    pub stages: Vec<Stage>,
    pub aux: Vec<Aux>,
    /// 0: no `outputs` line; 1: `outputs head, ...` at the top; 2: `outputs: head, ...` last.
    pub outputs: u8,
    pub dropout: bool,
}

/// What a walk over the description counts.
#[derive(Debug, Default, Clone)]
struct Count {
    params: u64,
    convs: usize,
    bns: usize,
}

/// Everything the description says, walked once.
#[derive(Debug, Default, Clone)]
pub struct Walk {
    pub params: u64,
    pub convs: usize,
    pub bns: usize,
    /// The stem's and every stage's output (auxiliary heads included), in the text's order.
    pub stage_outputs: Vec<Vec<u64>>,
    /// Every repetition of a block called from a stage: (stage index, input, output).
    pub reps: Vec<(usize, [u64; 3], [u64; 3])>,
    /// The outputs: name, shape, weight.
    pub outputs: Vec<(String, Vec<u64>, f64)>,
}

impl Net {
    fn builtin(block: Block) -> Vec<Item> {
        let conv = |kernel, a, strided| Item::Conv {
            kernel,
            width: Width { a, b: 0 },
            strided,
        };
        match block {
            Block::Basic => vec![conv(3, 1, true), conv(3, 1, false)],
            Block::Bottleneck => vec![conv(1, 1, true), conv(3, 1, false), conv(1, 4, false)],
            Block::BottleneckTv => vec![conv(1, 1, false), conv(3, 1, true), conv(1, 4, false)],
            Block::Inline(_) | Block::Line(_) => unreachable!("not a builtin"),
        }
    }

    fn items(&self, block: Block) -> Vec<Item> {
        match block {
            Block::Inline(i) => self.blocks[i].items.clone(),
            Block::Line(i) => self.lines[i].clone(),
            b => Self::builtin(b),
        }
    }

    fn conv(&self, k: u64, cin: u64, cout: u64, n: &mut Count) {
        n.params += k * k * cin * cout + if self.norm { 2 * cout } else { cout };
        n.convs += 1;
        n.bns += usize::from(self.norm);
    }

    /// Run `items` from `shape`: `c` the width, `inc` the block's input channels, `s` the
    /// stride of strided items.
    fn run(
        &self,
        items: &[Item],
        c: u64,
        inc: u64,
        s: u64,
        shape: [u64; 3],
        n: &mut Count,
    ) -> [u64; 3] {
        items
            .iter()
            .fold(shape, |sh, it| self.run_item(it, c, inc, s, sh, n))
    }

    fn run_item(
        &self,
        item: &Item,
        c: u64,
        inc: u64,
        s: u64,
        shape: [u64; 3],
        n: &mut Count,
    ) -> [u64; 3] {
        let st = if item.strided() { s } else { 1 };
        let [ch, h, w] = shape;
        let down = [h.div_ceil(st), w.div_ceil(st)];
        match item {
            Item::Conv { kernel, width, .. } => {
                let cout = width.value(c, inc);
                self.conv(*kernel, ch, cout, n);
                [cout, down[0], down[1]]
            }
            Item::Basic { mult, .. } => {
                self.conv(3, ch, mult * c, n);
                self.conv(3, mult * c, mult * c, n);
                [mult * c, down[0], down[1]]
            }
            Item::Pool { .. } => [ch, down[0], down[1]],
            Item::Merge(m) => {
                let parts = m.branches.len() as u64;
                let input = if m.split { [ch / parts, h, w] } else { shape };
                let outs: Vec<[u64; 3]> = m
                    .branches
                    .iter()
                    .map(|b| match b {
                        Branch::Identity => input,
                        Branch::Items(items) => self.run(items, c, inc, st, input, n),
                        Branch::Gate(g) => {
                            let r = g.reduced(input[0]);
                            // Two fcs, or two 1x1 convs with bias and no norm: the same counts.
                            n.params += input[0] * r + r + r * input[0] + input[0];
                            if g.convs {
                                n.convs += 2;
                            }
                            [input[0], 1, 1]
                        }
                    })
                    .collect();
                match m.kind {
                    MergeKind::Concat => [outs.iter().map(|o| o[0]).sum(), outs[0][1], outs[0][2]],
                    MergeKind::Add | MergeKind::Max => outs[0],
                    MergeKind::Mul => shape,
                }
            }
        }
    }

    fn option(&self, st: &Stage) -> Shortcut {
        st.shortcut.unwrap_or(self.shortcut)
    }

    /// Walk the description: parameters, layers and shapes. Option B projects where the
    /// block's output shape differs from its input's (docs/language.md): a stride on a 1-pixel
    /// map changes nothing, so it keeps the identity.
    pub fn walk(&self) -> Walk {
        let mut n = Count::default();
        let mut reps = Vec::new();
        let projection = |cin: u64, cout: u64| cin * cout + 2 * cout;
        self.conv(3, self.input[0], self.stem_width, &mut n);
        let [_, mut h, mut w] = self.input;
        if self.stem_pool {
            h /= 2;
            w /= 2;
        }
        let mut shape = [self.stem_width, h, w];
        let mut outs = vec![shape.to_vec()];
        let mut outputs = vec![];
        let aux = |k: usize,
                   shape: [u64; 3],
                   n: &mut Count,
                   outs: &mut Vec<Vec<u64>>,
                   outputs: &mut Vec<_>| {
            for (i, a) in self.aux.iter().enumerate().filter(|(_, a)| a.from == k) {
                let mut ch = shape[0];
                if let Some(wd) = a.conv {
                    self.conv(1, ch, wd, n);
                    ch = wd;
                }
                n.params += ch * self.classes + self.classes;
                outs.push(vec![self.classes]);
                let weight = a.weight.map_or(1.0, |t| t.parse().unwrap());
                outputs.push((i, (format!("aux{i}"), vec![self.classes], weight)));
            }
        };
        aux(0, shape, &mut n, &mut outs, &mut outputs);
        for (i, st) in self.stages.iter().enumerate() {
            let items = self.items(st.block);
            if let Block::Line(_) = st.block {
                shape = self.run(&items, st.width, shape[0], st.stride, shape, &mut n);
            } else {
                for r in 0..st.repeat {
                    let s = if r == 0 { st.stride } else { 1 };
                    let block_in = shape;
                    shape = self.run(&items, st.width, shape[0], s, shape, &mut n);
                    n.params += match self.option(st) {
                        Shortcut::B if block_in != shape => projection(block_in[0], shape[0]),
                        Shortcut::C => projection(block_in[0], shape[0]),
                        _ => 0,
                    };
                    reps.push((i, block_in, shape));
                }
            }
            outs.push(shape.to_vec());
            aux(i + 1, shape, &mut n, &mut outs, &mut outputs);
        }
        n.params += shape[0] * self.classes + self.classes;
        // The `outputs` line names the heads in their order, after the main one.
        outputs.sort_by_key(|o| o.0);
        let mut outputs: Vec<_> = outputs.into_iter().map(|o| o.1).collect();
        outputs.insert(0, ("head".to_string(), vec![self.classes], 1.0));
        if self.outputs == 0 {
            outputs.truncate(1);
        }
        Walk {
            params: n.params,
            convs: n.convs,
            bns: n.bns,
            stage_outputs: outs,
            reps,
            outputs,
        }
    }

    /// Option A cannot drop channels: such a stage takes B instead.
    fn fix_option_a(mut self) -> Self {
        for (i, block_in, out) in self.walk().reps {
            if self.option(&self.stages[i]) == Shortcut::A && out[0] < block_in[0] {
                self.stages[i].shortcut = Some(Shortcut::B);
            }
        }
        self
    }

    /// Trainable parameters, counted from the description.
    pub fn params(&self) -> u64 {
        self.walk().params
    }

    /// The stem's and each stage's output (`[C, H, W]`; an auxiliary head's `[classes]`),
    /// computed from the description: a conv of kernel 1 or 3 (padding 0 or 1) or a 3x3 max
    /// pool with padding 1 and stride `s` maps `n` to `ceil(n / s)`; a 2x2 max pool to `n / 2`.
    pub fn stage_outputs(&self) -> Vec<Vec<u64>> {
        self.walk().stage_outputs
    }

    /// Number of conv layers (shortcut projections aside).
    pub fn convs_count(&self) -> usize {
        self.walk().convs
    }

    /// Number of batch norms (one per conv under `norm bn`, none in the gates).
    pub fn bns_count(&self) -> usize {
        self.walk().bns
    }

    /// The description as `.arch` text; `blocks` is the path `use` names for blocks.arch.
    pub fn text(&self, blocks: &str) -> String {
        let mut s = format!("# generated\nuse \"{blocks}\"\n\n");
        for (i, b) in self.blocks.iter().enumerate() {
            let _ = writeln!(s, "block gen{i}(c) {{");
            let ctx = Ctx {
                line: false,
                c: 0,
                stride: 0,
            };
            for item in &b.items {
                let _ = writeln!(s, "    {}", item_text(item, ctx, 1));
            }
            s.push_str("}\n\n");
        }
        let name = if self.derived { "base" } else { "gen" };
        let [c, h, w] = self.input;
        let _ = writeln!(s, "network {name} {{");
        let _ = writeln!(s, "    input {c}x{h}x{w}");
        let _ = writeln!(s, "    classes {}", self.classes);
        let outputs = || {
            let mut items = vec!["head".to_string()];
            for (i, a) in self.aux.iter().enumerate() {
                items.push(match a.weight {
                    Some(wt) => format!("aux{i}: {wt}"),
                    None => format!("aux{i}"),
                });
            }
            items.join(", ")
        };
        if self.outputs == 1 {
            let _ = writeln!(s, "    outputs {}", outputs());
        }
        let top = if self.derived {
            Shortcut::None
        } else {
            self.shortcut
        };
        let _ = writeln!(s, "    shortcut {}", top.word());
        if !self.norm {
            s.push_str("    norm none\n");
        }
        let pool = if self.stem_pool { ", maxpool 2x2" } else { "" };
        let _ = writeln!(s, "    stem conv 3x3, {}{pool}", self.stem_width);
        let aux = |k: usize, s: &mut String| {
            let from = if k == 0 {
                "stem".to_string()
            } else {
                format!("stage{k}")
            };
            for (i, a) in self.aux.iter().enumerate().filter(|(_, a)| a.from == k) {
                let conv = a.conv.map_or(String::new(), |w| format!("conv 1x1, {w}, "));
                let _ = writeln!(s, "    aux{i} from {from}, {conv}avgpool, fc classes");
            }
        };
        aux(0, &mut s);
        for (i, st) in self.stages.iter().enumerate() {
            let _ = write!(s, "    stage{} ", i + 1);
            if let Block::Line(k) = st.block {
                let ctx = Ctx {
                    line: true,
                    c: st.width,
                    stride: st.stride,
                };
                let items: Vec<String> = self.lines[k]
                    .iter()
                    .map(|it| item_text(it, ctx, 1))
                    .collect();
                s.push_str(&items.join(", "));
            } else {
                let block = match st.block {
                    Block::Basic => "basic".to_string(),
                    Block::Bottleneck => "bottleneck".to_string(),
                    Block::BottleneckTv => "bottleneck_tv".to_string(),
                    Block::Inline(k) => format!("gen{k}"),
                    Block::Line(_) => unreachable!(),
                };
                let _ = write!(s, "{block}({})", st.width);
                if st.repeat != 1 {
                    let _ = write!(s, " x {}", st.repeat);
                }
                if st.stride != 1 {
                    let _ = write!(s, ", stride: {}", st.stride);
                }
                if let Some(o) = st.shortcut {
                    let _ = write!(s, ", shortcut: {}", o.word());
                }
            }
            s.push('\n');
            aux(i + 1, &mut s);
        }
        let dropout = if self.dropout { "dropout 0.5, " } else { "" };
        let _ = writeln!(s, "    head avgpool, {dropout}fc classes");
        if self.outputs == 2 {
            let _ = writeln!(s, "    outputs: {}", outputs());
        }
        s.push_str("}\n");
        if self.derived {
            let _ = writeln!(
                s,
                "\nnetwork gen = base with shortcut {}",
                self.shortcut.word()
            );
        }
        s
    }
}

/// One item as text; `depth` is the indentation level of a merge's closing brace.
fn item_text(item: &Item, ctx: Ctx, depth: usize) -> String {
    let stride = |strided: bool| {
        if strided {
            format!(", stride: {}", ctx.stride())
        } else {
            String::new()
        }
    };
    match item {
        Item::Conv {
            kernel,
            width,
            strided,
        } => format!(
            "conv {kernel}x{kernel}, {}{}",
            width.text(ctx),
            stride(*strided)
        ),
        Item::Basic { mult, strided } => format!(
            "basic({}){}",
            Width { a: *mult, b: 0 }.text(ctx),
            stride(*strided)
        ),
        Item::Pool { strided } => {
            let s = if *strided { ctx.stride() } else { "1".into() };
            format!("maxpool 3x3, stride: {s}, padding: 1")
        }
        Item::Merge(m) => {
            let split = if m.split { " split" } else { "" };
            let branches: Vec<String> = m
                .branches
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let name = format!("p{i}");
                    match b {
                        Branch::Identity => name,
                        Branch::Items(items) => {
                            let t: Vec<String> = items
                                .iter()
                                .map(|it| item_text(it, ctx, depth + 1))
                                .collect();
                            format!("{name} {}", t.join(", "))
                        }
                        Branch::Gate(g) => gate_text(*g, &name, ctx),
                    }
                })
                .collect();
            if m.one_line {
                format!("{}{split} {{ {} }}", m.kind.word(), branches.join("; "))
            } else {
                let pad = "    ".repeat(depth + 1);
                let close = "    ".repeat(depth);
                let body: String = branches.iter().map(|b| format!("{pad}{b}\n")).collect();
                format!("{}{split} {{\n{body}{close}}}", m.kind.word())
            }
        }
    }
}

/// `name avgpool, fc R, act: relu, fc W, act: sigmoid` (or the same with 1x1 convs).
fn gate_text(g: Gate, name: &str, ctx: Ctx) -> String {
    let w = g.width.text(ctx);
    let r = g.reduced_text(g.width.factor(ctx));
    if g.convs {
        format!(
            "{name} avgpool, conv 1x1, {r}, norm: none, act: relu, conv 1x1, {w}, norm: none, act: sigmoid"
        )
    } else {
        format!("{name} avgpool, fc {r}, act: relu, fc {w}, act: sigmoid")
    }
}

/// A small deterministic generator for the structures proptest draws a seed for (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// Builds items whose shapes fit: a strided merge has a strided item in every branch and no
/// identity; `add` and `max` branches end at one width; `split` only where the channels
/// divide; a gate has the merge input's width.
struct Builder {
    rng: Rng,
    merges: bool,
}

impl Builder {
    fn width(&mut self) -> Width {
        match self.rng.below(7) {
            0..=2 => Width::C,
            3 | 4 => Width { a: 2, b: 0 },
            5 => Width { a: 0, b: 1 },
            _ => Width { a: 1, b: 1 },
        }
    }

    /// One item from `cur` channels, and the channels after it.
    fn item(&mut self, cur: Width, strided: bool, depth: usize) -> (Item, Width) {
        let kinds = if self.merges && depth < 2 { 9 } else { 5 };
        match self.rng.below(kinds) {
            0..=2 => {
                let width = self.width();
                let kernel = if self.rng.percent(50) { 1 } else { 3 };
                (
                    Item::Conv {
                        kernel,
                        width,
                        strided,
                    },
                    width,
                )
            }
            3 => {
                let mult = self.rng.range(1, 2);
                (Item::Basic { mult, strided }, Width { a: mult, b: 0 })
            }
            4 if self.merges => (Item::Pool { strided }, cur),
            4 => (
                Item::Conv {
                    kernel: 3,
                    width: Width::C,
                    strided,
                },
                Width::C,
            ),
            _ => self.merge(cur, strided, depth),
        }
    }

    /// `n` items from `cur`, the `strided` one (if any) taking the stride.
    fn items(
        &mut self,
        cur: Width,
        n: u64,
        strided: Option<u64>,
        depth: usize,
    ) -> (Vec<Item>, Width) {
        let mut cur = cur;
        let mut items = Vec::new();
        for j in 0..n {
            let (it, w) = self.item(cur, strided == Some(j), depth);
            items.push(it);
            cur = w;
        }
        (items, cur)
    }

    fn merge(&mut self, cur: Width, strided: bool, depth: usize) -> (Item, Width) {
        let most = if depth > 0 { 2 } else { 4 };
        let one_line = depth > 0 || self.rng.percent(25);
        let parts: Vec<u64> = (2..=most)
            .filter(|p| cur.b == 0 && cur.a.is_multiple_of(*p))
            .collect();
        let k = self.rng.below(10);
        let (kind, split) = match k {
            0..=1 if !parts.is_empty() => (MergeKind::Concat, true),
            0..=4 => (MergeKind::Concat, false),
            5 | 6 => (MergeKind::Add, false),
            7 => (MergeKind::Max, false),
            _ if !strided => (MergeKind::Mul, false),
            _ => (MergeKind::Add, false),
        };
        let mut branches = Vec::new();
        let out;
        match kind {
            MergeKind::Concat => {
                let n = if split {
                    parts[self.rng.below(parts.len() as u64) as usize]
                } else {
                    self.rng.range(2, most)
                };
                let input = if split {
                    Width { a: cur.a / n, b: 0 }
                } else {
                    cur
                };
                let mut sum = Width { a: 0, b: 0 };
                for _ in 0..n {
                    if !strided && self.rng.percent(30) {
                        branches.push(Branch::Identity);
                        sum = sum.plus(input);
                    } else {
                        let len = self.rng.range(1, 2);
                        let s = strided.then(|| self.rng.below(len));
                        let (items, w) = self.items(input, len, s, depth + 1);
                        branches.push(Branch::Items(items));
                        sum = sum.plus(w);
                    }
                }
                out = sum;
            }
            MergeKind::Add | MergeKind::Max => {
                let target = if self.rng.percent(50) {
                    cur
                } else {
                    Width {
                        a: self.rng.range(1, 2),
                        b: 0,
                    }
                };
                for _ in 0..self.rng.range(2, most) {
                    if target == cur && !strided && self.rng.percent(30) {
                        branches.push(Branch::Identity);
                        continue;
                    }
                    // Maybe an item first, then a conv to the common width.
                    let len = self.rng.range(1, 2);
                    let s = strided.then(|| self.rng.below(len));
                    let (mut items, _) = self.items(cur, len - 1, s, depth + 1);
                    items.push(Item::Conv {
                        kernel: if self.rng.percent(50) { 1 } else { 3 },
                        width: target,
                        strided: s == Some(len - 1),
                    });
                    branches.push(Branch::Items(items));
                }
                out = target;
            }
            MergeKind::Mul => {
                let gate = Branch::Gate(Gate {
                    width: cur,
                    convs: self.rng.percent(50),
                    reduce: self.rng.below(5) as u8,
                });
                if self.rng.percent(70) {
                    branches = vec![Branch::Identity, gate];
                } else {
                    branches = vec![gate, Branch::Identity];
                }
                out = cur;
            }
        }
        let m = Merge {
            kind,
            split,
            branches,
            strided,
            one_line,
        };
        (Item::Merge(m), out)
    }

    /// The items of a block (or of a stage line: one merge), its width at most `c + in.c`
    /// at the end so that repeats grow linearly.
    fn finish(&mut self, mut items: Vec<Item>, out: Width) -> Vec<Item> {
        if out.b > 1 {
            items.push(Item::Conv {
                kernel: 1,
                width: Width::C,
                strided: false,
            });
        }
        items
    }
}

/// An inline block from `seed`: one to three items, one of them strided.
fn inline_block(seed: u64, merges: bool) -> InlineBlock {
    let mut b = Builder {
        rng: Rng(seed),
        merges,
    };
    let n = b.rng.range(1, 3);
    let strided = b.rng.below(n);
    let (items, out) = b.items(Width { a: 0, b: 1 }, n, Some(strided), 0);
    InlineBlock {
        items: b.finish(items, out),
    }
}

/// A stage line from `seed`: one merge, strided where the stage stride is not 1.
fn line(seed: u64, stride: u64) -> Vec<Item> {
    let mut b = Builder {
        rng: Rng(seed),
        merges: true,
    };
    let (m, out) = b.merge(Width { a: 0, b: 1 }, stride != 1, 0);
    b.finish(vec![m], out)
}

/// Limits of the generated sizes.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub channels: u64,
    pub spatial: u64,
    pub max_width: u64,
    pub max_repeat: u64,
    pub max_stages: usize,
    /// Merges, `in.c`, stage lines, auxiliary heads and `outputs`.
    pub merges: bool,
}

/// Sizes for the compiler alone (nothing is run).
pub const COMPILE: Sizes = Sizes {
    channels: 3,
    spatial: 40,
    max_width: 64,
    max_repeat: 3,
    max_stages: 4,
    merges: true,
};

/// Sizes small enough to build and run on a CPU in a debug build.
pub const RUN: Sizes = Sizes {
    channels: 3,
    spatial: 12,
    max_width: 6,
    max_repeat: 2,
    max_stages: 3,
    merges: true,
};

fn shortcut() -> impl Strategy<Value = Shortcut> {
    prop_oneof![
        Just(Shortcut::None),
        Just(Shortcut::A),
        Just(Shortcut::B),
        Just(Shortcut::C)
    ]
}

/// Random valid networks within `sz`.
pub fn net(sz: Sizes) -> impl Strategy<Value = Net> {
    let blocks = prop::collection::vec(any::<u64>(), 0..=2);
    let head = (
        prop_oneof![Just(1u64), Just(sz.channels)],
        4..=sz.spatial,
        4..=sz.spatial,
        2u64..=10,
        shortcut(),
        any::<bool>(),
        any::<bool>(),
        1..=sz.max_width,
        any::<bool>(),
        any::<bool>(),
    );
    let aux = (
        any::<u64>(),
        prop::option::of(1..=sz.max_width),
        prop_oneof![
            Just(None),
            Just(Some("0.3")),
            Just(Some("1")),
            Just(Some("0.25"))
        ],
    );
    let extra = (
        prop::collection::vec(aux, if sz.merges { 0..=2 } else { 0..=0 }),
        if sz.merges { 0u8..=2 } else { 0u8..=0 },
    );
    (head, blocks, extra).prop_flat_map(move |(h, blocks, extra)| {
        let kinds = 3 + blocks.len() + usize::from(sz.merges);
        let stage = (
            0..kinds,
            1..=sz.max_width,
            1..=sz.max_repeat,
            1u64..=3,
            prop::option::weighted(0.25, shortcut()),
            any::<u64>(),
        );
        let stages = prop::collection::vec(stage, 1..=sz.max_stages);
        (Just(h), Just(blocks), Just(extra), stages).prop_map(move |(h, blocks, extra, stages)| {
            let (c, height, width, classes, shortcut, derived, norm, stem, pool, dropout) = h;
            let inline = blocks.len();
            let mut lines = Vec::new();
            let stages: Vec<Stage> = stages
                .into_iter()
                .map(|(k, width, repeat, stride, shortcut, seed)| match k {
                    0 => Stage {
                        block: Block::Basic,
                        width,
                        repeat,
                        stride,
                        shortcut,
                    },
                    1 => Stage {
                        block: Block::Bottleneck,
                        width,
                        repeat,
                        stride,
                        shortcut,
                    },
                    2 => Stage {
                        block: Block::BottleneckTv,
                        width,
                        repeat,
                        stride,
                        shortcut,
                    },
                    i if i - 3 < inline => Stage {
                        block: Block::Inline(i - 3),
                        width,
                        repeat,
                        stride,
                        shortcut,
                    },
                    _ => {
                        lines.push(line(seed, stride));
                        Stage {
                            block: Block::Line(lines.len() - 1),
                            width,
                            repeat: 1,
                            stride,
                            shortcut: None,
                        }
                    }
                })
                .collect();
            let (aux, outputs) = extra;
            let n = stages.len() as u64;
            let aux = aux
                .into_iter()
                .map(|(at, conv, weight)| Aux {
                    from: (at % (n + 1)) as usize,
                    conv,
                    weight,
                })
                .collect();
            Net {
                input: [c, height, width],
                classes,
                shortcut,
                derived,
                norm,
                stem_width: stem,
                stem_pool: pool,
                blocks: blocks.iter().map(|&s| inline_block(s, sz.merges)).collect(),
                lines,
                stages,
                aux,
                outputs,
                dropout,
            }
            .fix_option_a()
        })
    })
}

/// The path of `architectures/blocks.arch` for a `use` line.
pub fn blocks_path() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../architectures/blocks.arch");
    p.canonicalize()
        .unwrap_or(p)
        .display()
        .to_string()
        .replace('\\', "/")
}
