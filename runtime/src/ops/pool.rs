//! The pools: `MaxPool2d`, `AvgPool2d` (validated with the compiler's window rule, in
//! `ceil_mode` too) and `AdaptiveAvgPool2d`; their Burn modules, forward (on burn-flex, archc's
//! own kernels: `crate::flex`) and codegen text. And
//! the `spp` unit (spatial pyramid pooling), checked against PyTorch by `runtime/tests/ops.rs`.

use burn::nn::pool::{
    AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig, MaxPool2d,
    MaxPool2dConfig,
};

use burn::tensor::Tensor;
use linkme::distributed_slice;

use super::conv::{arr, explicit, padding_text, window};
use super::{
    inputs, int, layer, map_shape, value, Attrs, Gen, Init, Layer, NodeOp, Py, RuntimeUnit, Rust,
    Torch, Value, RUNTIME_UNITS,
};
use crate::onnx::proto::AttributeProto;
use crate::onnx::{attr_int, attr_ints, i64s, Onnx};
use crate::pytorch::pair;

/// A pool's window (the fields `MaxPool2d` and `AvgPool2d` share).
pub struct Window {
    pub kernel_size: [usize; 2],
    pub strides: [usize; 2],
    pub padding: [usize; 2],
    pub ceil_mode: bool,
}

impl Window {
    /// `[C, OH, OW]` from the input, or why the window does not fit.
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [x] = inputs(ins)?;
        let [c, h, w] = map_shape(x)?;
        let Window {
            kernel_size,
            strides,
            padding,
            ceil_mode,
        } = *self;
        if kernel_size.contains(&0) || strides.contains(&0) {
            return Err("a size is zero".into());
        }
        if padding[0] > kernel_size[0] / 2 || padding[1] > kernel_size[1] / 2 {
            return Err("padding exceeds half the kernel".into());
        }
        let oh = window(h, kernel_size[0], strides[0], padding[0], 1, ceil_mode);
        let ow = window(w, kernel_size[1], strides[1], padding[1], 1, ceil_mode);
        match (oh, ow) {
            (Some(oh), Some(ow)) => Ok(vec![c, oh, ow]),
            _ => Err(format!("window does not fit the {h}x{w} input")),
        }
    }

    /// The config's text after `new`: strides, padding, and ceil mode where it is on (Burn's
    /// default is off); `extra` between padding and ceil mode.
    /// `F.<function>(x, kernel, stride=…[, padding=…]{extra}[, ceil_mode=True])`.
    fn python(&self, function: &str, x: &str, extra: &str) -> String {
        let mut s = format!(
            "F.{function}({x}, {}, stride={}",
            pair(self.kernel_size),
            pair(self.strides)
        );
        if self.padding != [0, 0] {
            s.push_str(&format!(", padding={}", pair(self.padding)));
        }
        s.push_str(extra);
        if self.ceil_mode {
            s.push_str(", ceil_mode=True");
        }
        s.push(')');
        s
    }

    fn rust(&self, config: &str, extra: &str) -> String {
        let ceil = if self.ceil_mode {
            "\n                .with_ceil_mode(true)"
        } else {
            ""
        };
        format!(
            "{config}::new({})\n                .with_strides({})\n                .with_padding({}){extra}{ceil}\n                .init()",
            arr(self.kernel_size),
            arr(self.strides),
            padding_text(self.padding),
        )
    }

    /// The window as archc's burn-flex kernels take it.
    #[cfg(feature = "flex")]
    fn args(&self, count_include_pad: bool) -> crate::flex::PoolArgs {
        crate::flex::PoolArgs {
            kernel: self.kernel_size,
            stride: self.strides,
            padding: self.padding,
            ceil_mode: self.ceil_mode,
            count_include_pad,
        }
    }

    /// ONNX's attributes of the window (`pads` before and after, as PyTorch pads).
    fn onnx(&self) -> Vec<AttributeProto> {
        let [ph, pw] = self.padding.map(|p| p as i64);
        vec![
            attr_ints("kernel_shape", &i64s(self.kernel_size)),
            attr_ints("strides", &i64s(self.strides)),
            attr_ints("pads", &[ph, pw, ph, pw]),
            attr_int("ceil_mode", self.ceil_mode as i64),
        ]
    }
}

/// `LoweredOp::MaxPool2d`.
pub struct MaxPoolOp(pub Window);

impl NodeOp for MaxPoolOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        self.0.check(ins)
    }

    fn build(&self, _: &Init) -> Option<Layer> {
        let w = &self.0;
        Some(Layer::MaxPool(
            MaxPool2dConfig::new(w.kernel_size)
                .with_strides(w.strides)
                .with_padding(explicit(w.padding))
                .with_ceil_mode(w.ceil_mode)
                .init(),
        ))
    }

    fn forward(&self, l: Option<&Layer>, ins: Vec<Value>) -> Value {
        let m: &MaxPool2d = layer(l, |l| match l {
            Layer::MaxPool(m) => Some(m),
            _ => None,
        });
        let x = value(ins).map();
        #[cfg(feature = "flex")]
        if crate::flex::applies(&x.device(), x.dtype()) {
            return Value::Map(crate::flex::max_pool2d(x, self.0.args(false)));
        }
        Value::Map(m.forward(x))
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        Ok(Torch::expr(self.0.python("max_pool2d", py.x(0), "")))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let init = self.0.rust("MaxPool2dConfig", "");
        Ok(Rust::module("MaxPool2d", init, g.forward()))
    }

    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        let x = o.map(0);
        Ok(o.op("MaxPool", &[&x], self.0.onnx()))
    }
}

/// `LoweredOp::AvgPool2d`.
pub struct AvgPoolOp {
    pub window: Window,
    pub count_include_pad: bool,
}

impl NodeOp for AvgPoolOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        self.window.check(ins)
    }

    fn build(&self, _: &Init) -> Option<Layer> {
        let w = &self.window;
        Some(Layer::AvgPool(
            AvgPool2dConfig::new(w.kernel_size)
                .with_strides(w.strides)
                .with_padding(explicit(w.padding))
                .with_count_include_pad(self.count_include_pad)
                .with_ceil_mode(w.ceil_mode)
                .init(),
        ))
    }

    fn forward(&self, l: Option<&Layer>, ins: Vec<Value>) -> Value {
        let m: &AvgPool2d = layer(l, |l| match l {
            Layer::AvgPool(m) => Some(m),
            _ => None,
        });
        let x = value(ins).map();
        #[cfg(feature = "flex")]
        if crate::flex::applies(&x.device(), x.dtype()) {
            let args = self.window.args(self.count_include_pad);
            return Value::Map(crate::flex::avg_pool2d(x, args));
        }
        Value::Map(m.forward(x))
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        let extra = if self.count_include_pad {
            ""
        } else {
            ", count_include_pad=False"
        };
        Ok(Torch::expr(self.window.python(
            "avg_pool2d",
            py.x(0),
            extra,
        )))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let extra = format!(
            "\n                .with_count_include_pad({})",
            self.count_include_pad
        );
        let init = self.window.rust("AvgPool2dConfig", &extra);
        Ok(Rust::module("AvgPool2d", init, g.forward()))
    }

    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        let x = o.map(0);
        let mut attrs = self.window.onnx();
        attrs.push(attr_int("count_include_pad", self.count_include_pad as i64));
        Ok(o.op("AveragePool", &[&x], attrs))
    }
}

/// `LoweredOp::AdaptiveAvgPool2d`: its output size.
pub struct AdaptiveAvgPoolOp(pub [usize; 2]);

impl NodeOp for AdaptiveAvgPoolOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [x] = inputs(ins)?;
        let [c, _, _] = map_shape(x)?;
        Ok(vec![c, self.0[0], self.0[1]])
    }

    fn build(&self, _: &Init) -> Option<Layer> {
        Some(Layer::AdaptiveAvgPool(
            AdaptiveAvgPool2dConfig::new(self.0).init(),
        ))
    }

    fn forward(&self, l: Option<&Layer>, ins: Vec<Value>) -> Value {
        let m: &AdaptiveAvgPool2d = layer(l, |l| match l {
            Layer::AdaptiveAvgPool(m) => Some(m),
            _ => None,
        });
        let x = value(ins).map();
        #[cfg(feature = "flex")]
        if crate::flex::applies(&x.device(), x.dtype()) {
            return Value::Map(crate::flex::adaptive_avg_pool2d(x, self.0));
        }
        Value::Map(m.forward(x))
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        Ok(Torch::expr(format!(
            "F.adaptive_avg_pool2d({}, {})",
            py.x(0),
            pair(self.0)
        )))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let init = format!("AdaptiveAvgPool2dConfig::new({}).init()", arr(self.0));
        Ok(Rust::module("AdaptiveAvgPool2d", init, g.forward()))
    }

    /// `GlobalAveragePool` to 1x1; `AveragePool` where the output divides the input; else
    /// each output row's bin averaged (`Slice`, `ReduceMean`, `Concat`), then each column's:
    /// the mean over a rectangle is the mean of its rows' means, as the bins are PyTorch's
    /// (rows `floor(i·H/OH) … ceil((i+1)·H/OH) − 1`).
    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        let x = o.map(0);
        let [_, h, w] = map_shape(o.shape(0))?;
        let [oh, ow] = self.0;
        if [oh, ow] == [1, 1] {
            return Ok(o.op("GlobalAveragePool", &[&x], Vec::new()));
        }
        if oh > 0 && ow > 0 && h % oh == 0 && w % ow == 0 {
            let k = [h / oh, w / ow];
            let attrs = vec![
                attr_ints("kernel_shape", &i64s(k)),
                attr_ints("strides", &i64s(k)),
            ];
            return Ok(o.op("AveragePool", &[&x], attrs));
        }
        let rows = adaptive_axis(o, &x, 2, h, oh);
        Ok(adaptive_axis(o, &rows, 3, w, ow))
    }
}

/// Adaptive average pooling of `x` along `axis` (of `size`) into `out` bins.
fn adaptive_axis(o: &mut Onnx, x: &str, axis: i64, size: usize, out: usize) -> String {
    if size == out {
        return x.to_string();
    }
    let bins: Vec<String> = (0..out)
        .map(|i| {
            let (s, e) = (i * size / out, ((i + 1) * size).div_ceil(out));
            let bin = o.slice(x, &[s as i64], &[e as i64], &[axis], &[1]);
            o.reduce("ReduceMean", &bin, &[axis], true)
        })
        .collect();
    let bins: Vec<&str> = bins.iter().map(String::as_str).collect();
    o.op("Concat", &bins, vec![attr_int("axis", axis)])
}

/// `spp N1, N2, …`: spatial pyramid pooling (compiler's `layers::spp`), a unit op.
#[distributed_slice(RUNTIME_UNITS)]
static SPP: RuntimeUnit = RuntimeUnit {
    unit: "spp",
    check: |a, ins| {
        let [x] = inputs(ins)?;
        let [c, _, _] = map_shape(x)?;
        let levels = spp_levels(a);
        if levels.is_empty() || levels.len() > archc_compiler::layers::spp::MAX_LEVELS {
            return Err(format!("{} pyramid levels (1 to 6)", levels.len()));
        }
        if levels.contains(&0) {
            return Err(format!("a pyramid level of 0 bins in {levels:?}"));
        }
        Ok(vec![c * levels.iter().map(|b| b * b).sum::<usize>()])
    },
    build: |_, _, _, _| None,
    forward: |a, _, ins| Value::Flat(spp(value(ins).map(), &spp_levels(a))),
    pytorch: |a, py| {
        let levels: Vec<String> = spp_levels(a).iter().map(usize::to_string).collect();
        let mut t = Torch::expr(format!("spp({}, [{}])", py.x(0), levels.join(", ")));
        t.helpers.push(SPP_PYTHON);
        Ok(t)
    },
    rust: |a, g| {
        let levels: Vec<String> = spp_levels(a).iter().map(usize::to_string).collect();
        let mut r = Rust::expr(format!("spp({}, &[{}])", g.x(0), levels.join(", ")));
        r.helpers.push(SPP_RUST);
        Ok(r)
    },
    onnx: |a, o| {
        let x = o.map(0);
        let [_, h, w] = map_shape(o.shape(0))?;
        let parts: Vec<String> = spp_levels(a)
            .into_iter()
            .map(|b| spp_onnx(o, &x, [h, w], b))
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        Ok(o.op("Concat", &parts, vec![attr_int("axis", 1)]))
    },
};

/// One pyramid level of [`spp`] as ONNX: `MaxPool` where `b` divides both sides, else each
/// bin's `Slice` and `ReduceMax`, concatenated row by row; flattened channel by channel.
fn spp_onnx(o: &mut Onnx, x: &str, [h, w]: [usize; 2], b: usize) -> String {
    if h % b == 0 && w % b == 0 {
        let k = [h / b, w / b];
        let attrs = vec![
            attr_ints("kernel_shape", &i64s(k)),
            attr_ints("strides", &i64s(k)),
        ];
        let pooled = o.op("MaxPool", &[x], attrs);
        return o.op("Flatten", &[&pooled], vec![attr_int("axis", 1)]);
    }
    let mut bins = Vec::with_capacity(b * b);
    for i in 0..b {
        let (r0, r1) = (i * h / b, ((i + 1) * h).div_ceil(b));
        for j in 0..b {
            let (c0, c1) = (j * w / b, ((j + 1) * w).div_ceil(b));
            let [r0, r1, c0, c1] = [r0, r1, c0, c1].map(|v| v as i64);
            let window = o.slice(x, &[r0, c0], &[r1, c1], &[2, 3], &[1, 1]);
            // [N, C, 1, 1] per bin; bins side by side along the rows' axis.
            bins.push(o.reduce("ReduceMax", &window, &[2, 3], true));
        }
    }
    let bins: Vec<&str> = bins.iter().map(String::as_str).collect();
    let cat = o.op("Concat", &bins, vec![attr_int("axis", 2)]);
    o.op("Flatten", &[&cat], vec![attr_int("axis", 1)])
}

/// The levels of an `spp` node, in order (`levels`, then `level1` …).
fn spp_levels(a: &Attrs) -> Vec<usize> {
    let names = ["level1", "level2", "level3", "level4", "level5", "level6"];
    let n = int(a, "levels").min(names.len() + 1);
    (0..n)
        .map(|i| names.get(i).map_or(0, |name| int(a, name)))
        .collect()
}

/// [`spp`] in the generated file.
const SPP_PYTHON: &str = r#"def spp(x, levels):
    """Spatial pyramid pooling: for each level b, max pooling into bxb bins
    (`adaptive_max_pool2d`), flattened channel by channel; the levels concatenated."""
    return torch.cat([F.adaptive_max_pool2d(x, b).flatten(1) for b in levels], 1)
"#;

const SPP_RUST: &str = "/// Spatial pyramid pooling: for each level N, max pooling into NxN bins (PyTorch's\n/// `adaptive_max_pool2d` windows), flattened channel by channel; the levels concatenated.\nfn spp(x: Tensor<4>, levels: &[usize]) -> Tensor<2> {\n    let [n, c, h, w] = x.dims();\n    let parts = levels\n        .iter()\n        .map(|&b| {\n            if h % b == 0 && w % b == 0 {\n                return x\n                    .clone()\n                    .reshape([n, c, b, h / b, b, w / b])\n                    .max_dim(5)\n                    .max_dim(3)\n                    .reshape([n, c * b * b]);\n            }\n            let mut bins = Vec::with_capacity(b * b);\n            for i in 0..b {\n                let (r0, r1) = (i * h / b, ((i + 1) * h).div_ceil(b));\n                for j in 0..b {\n                    let (c0, c1) = (j * w / b, ((j + 1) * w).div_ceil(b));\n                    let window = x.clone().slice([0..n, 0..c, r0..r1, c0..c1]);\n                    bins.push(window.reshape([n, c, (r1 - r0) * (c1 - c0)]).max_dim(2));\n                }\n            }\n            Tensor::cat(bins, 2).reshape([n, c * b * b])\n        })\n        .collect();\n    Tensor::cat(parts, 1)\n}\n";

/// Spatial pyramid pooling: for each level N, max pooling into N×N bins (PyTorch's
/// `adaptive_max_pool2d` windows: bin `i` spans rows `floor(i·H/N) … ceil((i+1)·H/N) − 1`),
/// flattened channel by channel; the levels concatenated in order. Where N divides both sides
/// the windows tile the map and one reshape pools them; elsewhere each bin is its own slice.
pub fn spp(x: Tensor<4>, levels: &[usize]) -> Tensor<2> {
    let [n, c, h, w] = x.dims();
    let parts = levels
        .iter()
        .map(|&b| {
            if h % b == 0 && w % b == 0 {
                return x
                    .clone()
                    .reshape([n, c, b, h / b, b, w / b])
                    .max_dim(5)
                    .max_dim(3)
                    .reshape([n, c * b * b]);
            }
            let mut bins = Vec::with_capacity(b * b);
            for i in 0..b {
                let (r0, r1) = (i * h / b, ((i + 1) * h).div_ceil(b));
                for j in 0..b {
                    let (c0, c1) = (j * w / b, ((j + 1) * w).div_ceil(b));
                    let window = x.clone().slice([0..n, 0..c, r0..r1, c0..c1]);
                    bins.push(window.reshape([n, c, (r1 - r0) * (c1 - c0)]).max_dim(2));
                }
            }
            Tensor::cat(bins, 2).reshape([n, c * b * b])
        })
        .collect();
    Tensor::cat(parts, 1)
}
