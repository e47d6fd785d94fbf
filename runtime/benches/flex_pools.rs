//! archc's pooling kernels on burn-flex (`archc_runtime::flex`) against Burn's pool modules
//! (burn-flex's own pools), a training step's forward and backward of each pool at sizes the zoo
//! trains at, interleaved: one of each per round, the medians and their ratio printed.
//!
//! `cargo bench -p archc-runtime --bench flex_pools` (release build; `RAYON_NUM_THREADS` sets
//! the threads). Results go in docs/benchmarks.md.

use std::time::Instant;

use archc_runtime::{flex, Device};
use burn::nn::pool::{AdaptiveAvgPool2dConfig, AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::{Distribution, Tensor};

const ROUNDS: usize = 15;

/// Seconds of one forward and backward of `pool` on `x`.
fn step(x: &Tensor<4>, up: &Tensor<4>, pool: &dyn Fn(Tensor<4>) -> Tensor<4>) -> f64 {
    let t = Instant::now();
    let x = x.clone().require_grad();
    let grads = (pool(x.clone()) * up.clone()).sum().backward();
    let g = x.grad(&grads).expect("a gradient");
    // Wait for the values (burn-flex is eager; this also keeps the work from being skipped).
    std::hint::black_box(g.into_data());
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let device = Device::flex().autodiff();
    let args = |k: usize, s: usize, p: usize, ceil: bool| flex::PoolArgs {
        kernel: [k, k],
        stride: [s, s],
        padding: [p, p],
        ceil_mode: ceil,
        count_include_pad: true,
    };
    let pad = |p: usize| PaddingConfig2d::Explicit(p, p, p, p);
    type Pool = Box<dyn Fn(Tensor<4>) -> Tensor<4>>;
    let cases: Vec<(&str, [usize; 4], Pool, Pool)> = vec![
        (
            "max 3x3/2 pad 1 (ResNet's stem, 128 px)",
            [32, 64, 64, 64],
            Box::new(move |x| flex::max_pool2d(x, args(3, 2, 1, false))),
            Box::new({
                let m = MaxPool2dConfig::new([3, 3])
                    .with_strides([2, 2])
                    .with_padding(pad(1))
                    .init();
                move |x| m.forward(x)
            }),
        ),
        (
            "max 3x3/2 ceil (GoogLeNet's)",
            [32, 192, 28, 28],
            Box::new(move |x| flex::max_pool2d(x, args(3, 2, 0, true))),
            Box::new({
                let m = MaxPool2dConfig::new([3, 3])
                    .with_strides([2, 2])
                    .with_ceil_mode(true)
                    .init();
                move |x| m.forward(x)
            }),
        ),
        (
            "avg 2x2/2 (DenseNet's transition)",
            [32, 128, 28, 28],
            Box::new(move |x| flex::avg_pool2d(x, args(2, 2, 0, false))),
            Box::new({
                let m = AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
                move |x| m.forward(x)
            }),
        ),
        (
            "avg 3x3/1 pad 1 (Inception's branch)",
            [32, 192, 17, 17],
            Box::new(move |x| flex::avg_pool2d(x, args(3, 1, 1, false))),
            Box::new({
                let m = AvgPool2dConfig::new([3, 3])
                    .with_strides([1, 1])
                    .with_padding(pad(1))
                    .init();
                move |x| m.forward(x)
            }),
        ),
        (
            "global avg of cifar_resnet20's head",
            [128, 64, 8, 8],
            Box::new(|x| flex::adaptive_avg_pool2d(x, [1, 1])),
            Box::new({
                let m = AdaptiveAvgPool2dConfig::new([1, 1]).init();
                move |x| m.forward(x)
            }),
        ),
        (
            "global avg of resnet50's head",
            [64, 2048, 7, 7],
            Box::new(|x| flex::adaptive_avg_pool2d(x, [1, 1])),
            Box::new({
                let m = AdaptiveAvgPool2dConfig::new([1, 1]).init();
                move |x| m.forward(x)
            }),
        ),
    ];
    println!(
        "{} rounds, {} rayon threads; milliseconds per forward + backward (median)",
        ROUNDS,
        rayon::current_num_threads()
    );
    println!("| pool | input | archc | burn-flex | burn-flex / archc |");
    println!("|---|---|---:|---:|---:|");
    for (name, shape, ours, burns) in &cases {
        let x: Tensor<4> = Tensor::random(*shape, Distribution::Uniform(-1.0, 1.0), &device);
        let y_dims = ours(x.clone()).dims();
        let up: Tensor<4> = Tensor::random(y_dims, Distribution::Uniform(-1.0, 1.0), &device);
        // One untimed step of each.
        step(&x, &up, ours.as_ref());
        step(&x, &up, burns.as_ref());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            // Alternate which goes first.
            if round % 2 == 0 {
                a.push(step(&x, &up, ours.as_ref()));
                b.push(step(&x, &up, burns.as_ref()));
            } else {
                b.push(step(&x, &up, burns.as_ref()));
                a.push(step(&x, &up, ours.as_ref()));
            }
        }
        let (a, b) = (median(a), median(b));
        println!(
            "| {name} | {shape:?} | {:.2} | {:.2} | {:.2}x |",
            a * 1e3,
            b * 1e3,
            b / a
        );
    }
}
