//! `Conv2d`: validation with the compiler's window rule ([`out_size`]) and weight shape
//! ([`conv::weight_shape`]), the module initialised as torchvision does (Kaiming normal,
//! fan_out; bias 0, or the value a Highway gate asks for), its forward (LibTorch's own kernels
//! when training on LibTorch), weights and codegen text.

use archc_compiler::layers::{conv, out_size, out_size_ceil};
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::tensor::Tensor;

use super::{
    inputs, layer, map_shape, value, Gen, Init, Layer, NodeOp, Py, Rust, Saved, Torch, Value,
};
use crate::init::{param, param_from, Fill};
use crate::onnx::{attr_int, attr_ints, i64s, Onnx};
use crate::pytorch::pair;

/// `LoweredOp::Conv2d`'s fields.
pub struct Conv2dOp {
    pub channels: [usize; 2],
    pub kernel_size: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub bias: bool,
}

impl NodeOp for Conv2dOp {
    fn check(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [x] = inputs(ins)?;
        let [c, h, w] = map_shape(x)?;
        let Conv2dOp {
            channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            ..
        } = *self;
        if c != channels[0] {
            return Err(format!("input has {c} channels, expected {}", channels[0]));
        }
        let sizes = [kernel_size, stride, dilation];
        if channels.contains(&0) || sizes.iter().any(|a| a.contains(&0)) || groups == 0 {
            return Err("a size is zero".into());
        }
        if channels[0] % groups != 0 || channels[1] % groups != 0 {
            return Err(format!(
                "groups {groups} do not divide channels {channels:?}"
            ));
        }
        let oh = window(h, kernel_size[0], stride[0], padding[0], dilation[0], false);
        let ow = window(w, kernel_size[1], stride[1], padding[1], dilation[1], false);
        match (oh, ow) {
            (Some(oh), Some(ow)) => Ok(vec![channels[1], oh, ow]),
            _ => Err(format!("kernel does not fit the {h}x{w} input")),
        }
    }

    fn build(&self, init: &Init) -> Option<Layer> {
        let [cin, cout] = self.channels.map(|c| c as u64);
        let kernel = self.kernel_size.map(|k| k as u64);
        let dims = conv::weight_shape(cin, cout, self.groups as u64, kernel).map(|d| d as usize);
        let fan_out = dims[0] * dims[2] * dims[3];
        let std = (2.0 / fan_out as f64).sqrt();
        let (seed, node, device) = (init.seed, init.node, init.device);
        Some(Layer::Conv(Conv2d {
            weight: param(dims, Fill::Normal { std }, seed, node, 0, device),
            bias: self.bias.then(|| {
                let fill = init.bias_fill(Fill::Constant(0.0));
                param([dims[0]], fill, seed, node, 1, device)
            }),
            stride: self.stride,
            kernel_size: self.kernel_size,
            dilation: self.dilation,
            groups: self.groups,
            padding: explicit(self.padding),
        }))
    }

    fn forward(&self, l: Option<&Layer>, ins: Vec<Value>) -> Value {
        let m = layer(l, |l| match l {
            Layer::Conv(m) => Some(m),
            _ => None,
        });
        Value::Map(conv2d(m, value(ins).map()))
    }

    fn load(&self, l: &mut Layer, take: &mut dyn FnMut(&str) -> Vec<f32>) {
        let Layer::Conv(c) = l else { return };
        let dims = c.weight.lazy_shape().dims::<4>();
        let device = c.weight.lazy_device();
        c.weight = param_from(c.weight.id, take("weight"), dims, &device);
        if let Some(b) = &mut c.bias {
            *b = param_from(b.id, take("bias"), [dims[0]], &device);
        }
    }

    fn save(&self, l: &Layer) -> Vec<Saved> {
        let Layer::Conv(c) = l else {
            return Vec::new();
        };
        let mut out = vec![Saved::F32("weight", c.weight.val().into_data())];
        if let Some(b) = &c.bias {
            out.push(Saved::F32("bias", b.val().into_data()));
        }
        out
    }

    fn pytorch(&self, py: &Py) -> Result<Torch, String> {
        let [cin, cout] = self.channels;
        let mut args = vec![cin.to_string(), cout.to_string(), pair(self.kernel_size)];
        if self.stride != [1, 1] {
            args.push(format!("stride={}", pair(self.stride)));
        }
        if self.padding != [0, 0] {
            args.push(format!("padding={}", pair(self.padding)));
        }
        if self.dilation != [1, 1] {
            args.push(format!("dilation={}", pair(self.dilation)));
        }
        if self.groups != 1 {
            args.push(format!("groups={}", self.groups));
        }
        if !self.bias {
            args.push("bias=False".into());
        }
        let init = format!("nn.Conv2d({})", args.join(", "));
        Ok(Torch::module(init, py.call()))
    }

    fn rust(&self, g: &Gen) -> Result<Rust, String> {
        let init = format!(
            "Conv2dConfig::new({}, {})\n                .with_stride({})\n                .with_padding({})\n                .with_dilation({})\n                .with_groups({})\n                .with_bias({})\n                .init(device)",
            arr(self.channels),
            arr(self.kernel_size),
            arr(self.stride),
            padding_text(self.padding),
            arr(self.dilation),
            self.groups,
            self.bias
        );
        Ok(Rust::module("Conv2d", init, g.forward()))
    }

    fn onnx(&self, o: &mut Onnx) -> Result<String, String> {
        let x = o.map(0);
        let (w, b) = (o.param("weight"), o.param("bias"));
        let [ph, pw] = self.padding.map(|p| p as i64);
        let attrs = vec![
            attr_ints("kernel_shape", &i64s(self.kernel_size)),
            attr_ints("strides", &i64s(self.stride)),
            attr_ints("pads", &[ph, pw, ph, pw]),
            attr_ints("dilations", &i64s(self.dilation)),
            attr_int("group", self.groups as i64),
        ];
        let ins: &[&str] = if self.bias { &[&x, &w, &b] } else { &[&x, &w] };
        Ok(o.op("Conv", ins, attrs))
    }
}

/// Output size of a window op along one axis, or `None` if the window does not fit: the
/// compiler's own rule ([`out_size`], or [`out_size_ceil`] for a pool in `ceil_mode`), so the
/// two can never disagree.
pub fn window(
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

/// Symmetric padding `[h, w]` as Burn's config.
pub fn explicit(p: [usize; 2]) -> PaddingConfig2d {
    PaddingConfig2d::Explicit(p[0], p[1], p[0], p[1])
}

/// [`explicit`] as codegen writes it.
pub fn padding_text(p: [usize; 2]) -> String {
    format!(
        "PaddingConfig2d::Explicit({}, {}, {}, {})",
        p[0], p[1], p[0], p[1]
    )
}

/// `[a, b]` as Rust text.
pub fn arr(a: [usize; 2]) -> String {
    format!("[{}, {}]", a[0], a[1])
}

/// A convolution layer: Burn's `Conv2d`, except when training on LibTorch, where LibTorch's own
/// forward and backward kernels run (`crate::fused`, feature `tch`), and on burn-flex, where
/// archc's run (`crate::flex`, feature `flex`).
fn conv2d(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    #[cfg(feature = "tch")]
    if crate::fused::is_libtorch_training(&x.device()) {
        return crate::fused::conv2d(conv, x);
    }
    #[cfg(feature = "flex")]
    if crate::flex::applies(&x.device(), x.dtype()) {
        return crate::flex::conv2d(conv, x);
    }
    conv.forward(x)
}

/// Stride, padding (symmetric), dilation and groups of a 2-d convolution: what archc's kernels
/// on LibTorch (`crate::fused`) and burn-flex (`crate::flex`) take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dArgs {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

/// The arguments of `conv` with valid or explicit symmetric padding (all archc emits); `None`
/// otherwise (asymmetric or `Same` padding: Burn's `Conv2d` runs).
pub fn conv2d_args(conv: &Conv2d) -> Option<Conv2dArgs> {
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            [top, left]
        }
        _ => return None,
    };
    Some(Conv2dArgs {
        stride: conv.stride,
        padding,
        dilation: conv.dilation,
        groups: conv.groups,
    })
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
