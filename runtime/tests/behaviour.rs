//! Initialisation, train/eval behaviour and a tiny training run.

mod common;

use archc_runtime::{Device, Layer, Network};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Int, Tensor, TensorData};

/// Every float tensor of a module, in visiting order.
struct Collect(Vec<Vec<f32>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        self.0.push(
            p.val()
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32"),
        );
    }
}

fn weights(net: &Network) -> Vec<Vec<f32>> {
    let mut c = Collect(Vec::new());
    net.visit(&mut c);
    c.0
}

fn vec1(t: Tensor<1>) -> Vec<f32> {
    t.into_data().try_into_vec::<f32>().expect("f32")
}

fn input(n: usize, hw: usize, seed: u64, device: &Device) -> Tensor<4> {
    // Deterministic without the backend RNG: a fixed pseudo-random pattern.
    let len = n * 3 * hw * hw;
    let v: Vec<f32> = (0..len)
        .map(|i| {
            let k = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed;
            ((k >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Tensor::<4>::from_data(TensorData::new(v, [n, 3, hw, hw]), device)
}

#[test]
fn init_is_reproducible_from_the_seed_and_independent_of_threads() {
    let g = common::lowered("cifar.arch", "cifar_resnet20", None);
    let device = common::device();
    let a = weights(&Network::new(&g, &device, 7).expect("builds"));
    // Built and materialised in two threads at once: same numbers.
    let (b, c) = std::thread::scope(|s| {
        let t1 = s.spawn(|| weights(&Network::new(&g, &common::device(), 7).expect("builds")));
        let t2 = s.spawn(|| weights(&Network::new(&g, &common::device(), 7).expect("builds")));
        (t1.join().expect("thread"), t2.join().expect("thread"))
    });
    assert_eq!(a, b);
    assert_eq!(a, c);
    let d = weights(&Network::new(&g, &device, 8).expect("builds"));
    assert_eq!(a.len(), d.len());
    assert_ne!(a, d, "a different seed gives different weights");
}

#[test]
fn init_follows_torchvision() {
    // resnet18 (224x224 is irrelevant: nothing runs): layer4.0.conv2 is 512->512 3x3.
    let g = common::lowered("resnet.arch", "resnet18", None);
    let net = Network::new(&g, &common::device(), 3).expect("builds");
    let by_name = |name: &str| net.layer(name).expect("layer");
    let Layer::Conv(conv) = by_name("layer4.0.conv2") else {
        panic!("not a conv")
    };
    let w = conv
        .weight
        .val()
        .into_data()
        .try_into_vec::<f32>()
        .expect("f32");
    let n = w.len() as f64;
    let mean = w.iter().map(|&x| x as f64).sum::<f64>() / n;
    let std = (w.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
    let expected = (2.0f64 / (512.0 * 9.0)).sqrt(); // kaiming_normal_, fan_out, relu
    assert!(mean.abs() < 1e-4, "mean {mean}");
    assert!(
        (std / expected - 1.0).abs() < 0.01,
        "std {std}, expected {expected}"
    );
    let Layer::Norm(bn) = by_name("layer4.0.bn2") else {
        panic!("not a bn")
    };
    assert!(vec1(bn.gamma.val()).iter().all(|&x| x == 1.0));
    assert!(vec1(bn.beta.val()).iter().all(|&x| x == 0.0));
    let Layer::Linear(fc) = by_name("fc") else {
        panic!("not a linear")
    };
    let bound = 1.0 / 512f32.sqrt();
    let w = fc
        .weight
        .val()
        .into_data()
        .try_into_vec::<f32>()
        .expect("f32");
    assert!(w.iter().all(|x| x.abs() <= bound));
    let max = w.iter().fold(0f32, |m, x| m.max(x.abs()));
    assert!(
        max > 0.99 * bound,
        "U(-1/sqrt(512), 1/sqrt(512)) reaches near its bound"
    );
    let b = vec1(fc.bias.as_ref().expect("bias").val());
    assert!(b.iter().all(|x| x.abs() <= bound) && b.iter().any(|&x| x != 0.0));
}

#[test]
fn batch_norm_uses_batch_statistics_in_training_and_running_ones_in_eval() {
    let g = common::lowered("cifar.arch", "cifar_resnet20", Some(&[3, 16, 16]));
    let ad = common::device().autodiff();
    let net = Network::new(&g, &ad, 5).expect("builds");
    let x = input(4, 16, 1, &ad).mul_scalar(3.0).add_scalar(2.0);

    // Fresh network: eval uses running stats (mean 0, var 1), training uses the batch's.
    let eval_before = net.valid().forward(x.clone().inner());
    let train = net.forward(x.clone());
    let diff = (train.inner() - eval_before.clone())
        .abs()
        .max()
        .into_scalar::<f32>();
    assert!(
        diff > 1e-3,
        "train and eval outputs should differ, diff {diff}"
    );

    // Running statistics of the first batch norm moved, with PyTorch's unbiased variance.
    let (Layer::Conv(conv), Layer::Norm(bn)) = (&net.layers[0], &net.layers[1]) else {
        panic!("cifar_resnet20 starts with conv, bn")
    };
    let y = conv.valid().forward(x.clone().inner()); // [4, 16, 16, 16]
    let [n, c, h, w] = y.dims();
    let per_channel = y.swap_dims(0, 1).reshape([c, n * h * w]);
    let mean = per_channel.clone().mean_dim(1).reshape([c]);
    let var = per_channel.var(1).reshape([c]); // unbiased
    let m = 0.1f32;
    let expected_mean: Vec<f32> = vec1(mean).iter().map(|v| m * v).collect();
    let expected_var: Vec<f32> = vec1(var).iter().map(|v| (1.0 - m) + m * v).collect();
    let got_mean = vec1(bn.running_mean.value_sync());
    let got_var = vec1(bn.running_var.value_sync());
    for i in 0..c {
        assert!((got_mean[i] - expected_mean[i]).abs() < 1e-4, "mean[{i}]");
        assert!(
            (got_var[i] - expected_var[i]).abs() < 1e-4 * expected_var[i].abs().max(1.0),
            "var[{i}]: {} vs {}",
            got_var[i],
            expected_var[i]
        );
    }

    // Eval after the update differs from eval before it; eval is deterministic.
    let eval_after = net.valid().forward(x.clone().inner());
    let diff = (eval_after.clone() - eval_before)
        .abs()
        .max()
        .into_scalar::<f32>();
    assert!(
        diff > 1e-4,
        "running statistics should change eval output, diff {diff}"
    );
    let again = net.valid().forward(x.inner());
    assert_eq!(
        again.into_data().try_into_vec::<f32>().expect("f32"),
        eval_after.into_data().try_into_vec::<f32>().expect("f32")
    );
}

/// A few SGD steps (momentum 0.9, dampening 0, as PyTorch's SGD) on one fixed batch of 8
/// synthetic 3x16x16 images (cifar_resnet20 at `--input 3x16x16`): the loss falls.
#[test]
fn a_tiny_training_run_lowers_the_loss() {
    let g = common::lowered("cifar.arch", "cifar_resnet20", Some(&[3, 16, 16]));
    let ad = common::device().autodiff();
    let net = Network::new(&g, &ad, 11).expect("builds");
    let x = input(8, 16, 2, &ad);
    let y = Tensor::<1, Int>::from_ints([0, 1, 2, 3, 4, 5, 6, 7], &ad);
    let (losses, _) = common::sgd_on_one_batch(net, x, y, 12, 0.02);
    eprintln!("cifar_resnet20 SGD losses: {losses:?}");
    let first = losses[0];
    let last = *losses.last().expect("steps");
    assert!(losses.iter().all(|l| l.is_finite()), "{losses:?}");
    assert!(last < 0.5 * first, "loss should fall: {losses:?}");
}
