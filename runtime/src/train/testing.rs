//! The paper's ImageNet testing (section 3.4): 10-crop and fully convolutional multi-scale
//! evaluation (`archc eval --ten-crop --scales …`). Each image's views
//! ([`crate::data::TestViews`]) go through the network; their class probabilities (softmax of
//! the logits) are averaged, and the top-1 and top-5 errors and the loss are those of the
//! average.

use std::collections::BTreeMap;

use archc_compiler::lower::LoweredGraph;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use rayon::prelude::*;

use super::{to_vec_f32, Confusion, EvalResult, Tally, TrainError};
use crate::data::{Dataset, Pipeline, TestViews, View};
use crate::Network;

/// How to test: the views, and how to compile the network at another input size (`[C, H, W]`)
/// for the views that are not of the input's size. The error says why it cannot be.
pub struct Testing<'a> {
    pub views: TestViews,
    pub at_size: &'a dyn Fn([usize; 3]) -> Result<LoweredGraph, String>,
}

/// Evaluate `model` on `data` with `testing`'s views (the input size and mean of `pipeline`;
/// its augmentation is not used): at most `batch_size` views a forward
/// pass, views of one size together (the network compiled at each size once, its layers
/// shared).
pub fn evaluate_views(
    model: &Network,
    data: &Dataset,
    pipeline: &Pipeline,
    testing: &Testing,
    batch_size: usize,
    device: &Device,
    mut confusion: Option<&mut Confusion>,
) -> Result<EvalResult, TrainError> {
    let (input, mean) = (pipeline.input, &pipeline.mean);
    let views = &testing.views;
    views
        .check(input)
        .map_err(|e| TrainError::Config(format!("--scales: {e}")))?;
    let device = device.clone().without_autodiff();
    let model = model.valid().to_device(&device);
    let classes = model.graph().output.iter().product::<usize>().max(1);
    let per = views.per_image();
    let mut nets: BTreeMap<[usize; 3], Network> = BTreeMap::new();
    let mut tally = Tally::default();
    let images: Vec<usize> = (0..data.len()).collect();
    for chunk in images.chunks((batch_size / per).max(1)) {
        let made: Vec<Result<Vec<View>, TrainError>> = chunk
            .par_iter()
            .map(|&i| {
                let img = data.image(i)?;
                views
                    .views(&img, input, mean)
                    .map_err(|e| TrainError::Input(format!("image {i} of {}: {e}", data.name())))
            })
            .collect();
        // Views of one size together, each tagged with its image's place in the chunk.
        let mut groups: BTreeMap<[usize; 3], Vec<(usize, View)>> = BTreeMap::new();
        for (k, v) in made.into_iter().enumerate() {
            for view in v? {
                groups.entry(view.shape).or_default().push((k, view));
            }
        }
        let mut probs = vec![0f64; chunk.len() * classes];
        for (shape, group) in groups {
            let net = match nets.get(&shape) {
                Some(n) => n,
                None => {
                    let net = if shape == input {
                        model.clone()
                    } else {
                        at_size(&model, testing, shape)?
                    };
                    nets.entry(shape).or_insert(net)
                }
            };
            for part in group.chunks(batch_size.max(1)) {
                let [c, h, w] = shape;
                let pixels: Vec<f32> = part
                    .iter()
                    .flat_map(|(_, v)| v.pixels.iter().copied())
                    .collect();
                let x =
                    Tensor::<4>::from_data(TensorData::new(pixels, [part.len(), c, h, w]), &device);
                let logits = net
                    .try_forward(x)
                    .map_err(|e| TrainError::Input(e.to_string()))?;
                let logits = to_vec_f32(logits)?;
                for ((k, _), row) in part.iter().zip(logits.chunks_exact(classes)) {
                    add_softmax(&mut probs[k * classes..(k + 1) * classes], row);
                }
            }
        }
        // The log of the averaged probabilities: their softmax is the average itself, so the
        // usual scoring gives the loss -ln(mean probability of the label) and the ranks.
        let log_mean: Vec<f32> = probs
            .iter()
            .map(|&p| (p / per as f64).ln() as f32)
            .collect();
        let labels: Vec<i64> = chunk.iter().map(|&i| data.label(i) as i64).collect();
        tally.add(&log_mean, &labels, classes, confusion.as_deref_mut());
    }
    Ok(tally.result(data.len(), classes))
}

/// `model` compiled at input `shape`, sharing its layers.
fn at_size(model: &Network, testing: &Testing, shape: [usize; 3]) -> Result<Network, TrainError> {
    let [c, h, w] = shape;
    let why = |e: String| {
        TrainError::Input(format!(
            "`{}` cannot test at {c}x{h}x{w} (--scales runs the whole image through the \
             network: it needs global pooling before the classifier): {e}",
            model.graph().network
        ))
    };
    let graph = (testing.at_size)(shape).map_err(why)?;
    model.with_graph(&graph).map_err(|e| why(e.to_string()))
}

/// Add the softmax of `logits` to `acc`, in f64.
fn add_softmax(acc: &mut [f64], logits: &[f32]) {
    let max = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let e: Vec<f64> = logits.iter().map(|&v| (v as f64 - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    for (a, v) in acc.iter_mut().zip(e) {
        *a += v / sum;
    }
}
