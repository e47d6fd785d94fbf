//! The f16 step's loss scaling ([`crate::precision::LossScaler`]): unscaling the gradients and
//! finding an inf or NaN among them, in one pass over the parameters.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use crate::Network;

struct Unscale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
    /// Sum over the gradients of `0 * g`: 0 when all are finite, NaN otherwise (`0 * inf` and
    /// `0 * NaN` are NaN). One sum on the device, read once.
    probe: Option<Tensor<1>>,
}

impl ModuleVisitor for Unscale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(g) = self.grads.remove::<D>(param.id) else {
            return;
        };
        let g = g.mul_scalar(self.factor);
        let zero = g.clone().mul_scalar(0.0).sum();
        let zero = match self.probe.take() {
            Some(p) => {
                let device = p.device();
                p + zero.to_device(&device)
            }
            None => zero,
        };
        self.probe = Some(zero);
        self.grads.register::<D>(param.id, g);
    }
}

/// `grads` times `factor` (1 / the loss scale), and whether every one of them is finite.
pub(crate) fn unscale(model: &Network, grads: &mut GradientsParams, factor: f64) -> bool {
    let mut v = Unscale {
        grads,
        factor,
        probe: None,
    };
    model.visit(&mut v);
    match v.probe {
        Some(p) => p.into_scalar::<f32>().is_finite(),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use archc_compiler::lower::lower;
    use archc_compiler::{compile_str, Overrides};
    use burn::tensor::Device;

    /// Gradients of 1 for every parameter of a small network, one of them inf or NaN if asked.
    fn case(poison: Option<f32>) -> (Network, GradientsParams, usize) {
        let src = "network n {\n input 3x8x8\n classes 4\n stem conv 3x3, 4\n head avgpool, fc classes\n}\n";
        let (_, r) = compile_str("n.arch", src, &Overrides::default());
        let graph = lower(&r.expect("compiles")[0]);
        let device = Device::flex();
        let model = Network::new(&graph, &device, 0).expect("builds");
        struct Ones<'a>(&'a mut GradientsParams, Option<f32>, usize);
        impl ModuleVisitor for Ones<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let v = param.val();
                let mut g = v.ones_like();
                if let Some(p) = self.1.take() {
                    let mut data: Vec<f32> = g.to_data().try_to_vec::<f32>().expect("f32");
                    data[0] = p;
                    g = Tensor::from_data(
                        burn::tensor::TensorData::new(data, v.dims()),
                        &v.device(),
                    );
                }
                self.0.register::<D>(param.id, g);
                self.2 += 1;
            }
        }
        let mut grads = GradientsParams::new();
        let mut ones = Ones(&mut grads, poison, 0);
        model.visit(&mut ones);
        let n = ones.2;
        (model, grads, n)
    }

    #[test]
    fn finite_gradients_are_unscaled() {
        let (model, mut grads, n) = case(None);
        assert!(n >= 4, "conv and fc weights and biases: {n}");
        assert!(unscale(&model, &mut grads, 0.25));
        assert_eq!(grads.len(), n, "every gradient is kept");
        struct Check<'a>(&'a GradientsParams);
        impl ModuleVisitor for Check<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let g = self.0.get::<D>(param.id).expect("a gradient");
                let v: Vec<f32> = g.to_data().try_to_vec::<f32>().expect("f32");
                assert!(v.iter().all(|&x| x == 0.25), "{v:?}");
            }
        }
        model.visit(&mut Check(&grads));
    }

    #[test]
    fn an_inf_or_nan_is_found() {
        for poison in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN] {
            let (model, mut grads, _) = case(Some(poison));
            assert!(!unscale(&model, &mut grads, 1.0 / 65536.0), "{poison}");
        }
    }
}
