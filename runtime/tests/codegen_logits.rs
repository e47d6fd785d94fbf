//! The module `archc codegen` writes computes what `Network` computes: the committed generated
//! cifar_resnet20 (tests/generated/, kept equal to the generator's output by tests/codegen.rs),
//! loaded with the same weights as a `Network` (seeded, with batch norm scales, shifts and
//! running statistics moved off their defaults so that each one matters), gives the same
//! logits; so does the committed generated `units` (fixtures/units.arch: every unit op kind,
//! on maps and on vectors; kept equal to the generator's output here). A second, `#[ignore]`d
//! test (CI runs it with the parity references of scripts/parity.py) compares cifar_resnet20's
//! logits with PyTorch's on PyTorch's weights.
//!
//! The weights go into the generated module by its field names, whatever they are: a
//! state-dict key `layer1.0.conv1.weight` is field `layer1_0_conv1`, parameter `weight`; every
//! parameter of the module must be found and every key used, so a regenerated module with
//! other fields fails here rather than running on its random initialisation.

mod common;

#[rustfmt::skip]
#[path = "generated/cifar_resnet20.rs"]
mod generated;

#[rustfmt::skip]
#[path = "generated/units.rs"]
mod units;

use std::collections::BTreeMap;
use std::path::Path;

use archc_runtime::Network;
use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::Dtype;

/// The float32 tensors of a state dict, by key: values and shape.
type StateDict = BTreeMap<String, (Vec<f32>, Vec<usize>)>;

fn read(path: &Path) -> StateDict {
    common::f32_tensors(path)
}

/// Sets every float parameter of a generated module from a state dict with PyTorch's names
/// and layouts (a linear weight `[out, in]`, batch norm `weight`/`bias` for Burn's
/// `gamma`/`beta`), counting the keys used.
struct Load<'a> {
    state: &'a StateDict,
    path: Vec<String>,
    used: Vec<String>,
    device: Device,
}

impl ModuleMapper for Load<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let [field, name] = &self.path[..] else {
            panic!("a parameter at {:?}", self.path)
        };
        let torch_name = match name.as_str() {
            "gamma" => "weight",
            "beta" => "bias",
            n => n,
        };
        let key = self
            .state
            .keys()
            .find(|k| {
                k.rsplit_once('.')
                    .is_some_and(|(m, p)| m.replace('.', "_") == *field && p == torch_name)
            })
            .unwrap_or_else(|| panic!("no weight for {field}.{name}"))
            .clone();
        let (values, shape) = &self.state[&key];
        let (id, old, _) = param.consume();
        let want = old.dims().to_vec();
        let t = if D == 2 && shape.len() == 2 && want == [shape[1], shape[0]] {
            // A linear weight: PyTorch's [out, in] is Burn's [in, out].
            let t: Tensor<D> =
                Tensor::from_data(TensorData::new(values.clone(), shape.clone()), &self.device);
            t.transpose()
        } else {
            assert_eq!(&want, shape, "{key}");
            Tensor::from_data(TensorData::new(values.clone(), shape.clone()), &self.device)
        };
        self.used.push(key);
        Param::initialized(id, t)
    }
}

fn load<M: Module>(net: M, state: &StateDict) -> M {
    let mut l = Load {
        state,
        path: Vec::new(),
        used: Vec::new(),
        device: common::device(),
    };
    let net = net.map(&mut l);
    l.used.sort();
    let all: Vec<&String> = state.keys().collect();
    assert_eq!(
        l.used.iter().collect::<Vec<_>>(),
        all,
        "every weight is used once"
    );
    net
}

/// `[n, 3, 32, 32]` values in [-1, 1) from a fixed sequence.
fn input(n: usize) -> Vec<f32> {
    let mut s = 0x2545_f491_4f6c_dd1du64;
    (0..n * 3 * 32 * 32)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn logits(t: Tensor<2>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32 logits")
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Norms away from their defaults (scale 1, shift 0, mean 0, variance 1), every channel
/// differently, so a norm left out or mis-wired changes the logits: the scales and shifts of the
/// modules `norms`, and every running statistic.
fn move_off_defaults(state: &mut StateDict, norms: &[String]) {
    for (key, (values, _)) in state.iter_mut() {
        let (module, p) = key.rsplit_once('.').expect("module.param");
        let is_norm = norms.iter().any(|b| b == module);
        let wave = |k: usize, a: f32| ((k as f32 + 1.0) * a).sin();
        match p {
            "running_mean" => values
                .iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = 0.2 * wave(k, 0.7)),
            "running_var" => values
                .iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = 0.8 + 0.3 * wave(k, 1.3)),
            "weight" if is_norm => values
                .iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = 1.0 + 0.4 * wave(k, 2.1)),
            "bias" if is_norm => values
                .iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = 0.1 * wave(k, 0.9)),
            _ => {}
        }
    }
}

/// Write `state` as a safetensors file.
fn write(state: &StateDict, path: &Path) {
    let bytes: BTreeMap<String, Vec<u8>> = state
        .iter()
        .map(|(k, (v, _))| (k.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(&String, safetensors::tensor::TensorView)> = state
        .iter()
        .map(|(k, (_, shape))| {
            (
                k,
                safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), &bytes[k])
                    .expect("view"),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).expect("writes");
}

/// The largest difference between two logits, after checking they are of a useful size.
fn compare(ours: &[f32], theirs: &[f32]) -> f32 {
    let scale = ours.iter().map(|v| v.abs()).fold(0.0, f32::max);
    let d = max_diff(ours, theirs);
    println!("max |Network - generated| = {d:e} (max |logit| = {scale:.3})");
    assert!(scale > 0.1, "logits of a useful size: {scale}");
    d
}

#[test]
fn generated_module_gives_networks_logits_on_the_same_weights() {
    let g = common::lowered("cifar.arch", "cifar_resnet20", None);
    let device = common::device();
    let dir = tempfile::tempdir().expect("tempdir");
    let seeded = dir.path().join("seeded.safetensors");
    Network::new(&g, &device, 7)
        .expect("builds")
        .save_weights(&seeded)
        .expect("saves");
    let mut state = read(&seeded);
    let bns: Vec<String> = state
        .keys()
        .filter_map(|k| k.strip_suffix(".running_mean").map(str::to_string))
        .collect();
    assert_eq!(bns.len(), 19, "cifar_resnet20's batch norms");
    move_off_defaults(&mut state, &bns);
    let moved = dir.path().join("moved.safetensors");
    write(&state, &moved);

    let mut net = Network::new(&g, &device, 0).expect("builds");
    net.load_weights(&moved).expect("loads");
    let gen = load(generated::CifarResnet20::new(&device), &state);
    let x = input(4);
    let t = || Tensor::<4>::from_data(TensorData::new(x.clone(), [4, 3, 32, 32]), &device);
    let d = compare(&logits(net.forward(t())), &logits(gen.forward(t())));
    assert!(d < 1e-4, "the generated module's logits differ by {d}");
}

/// The unit ops (layer norm, group norm, channel shuffle, drop path, maxout; the norms and
/// maxout on vectors too) as `archc codegen` writes them compute what `Network` computes, in
/// evaluation (drop path is the identity there).
#[test]
fn generated_unit_ops_give_networks_logits_on_the_same_weights() {
    let g = common::lowered_str(include_str!("fixtures/units.arch"));
    let now = archc_runtime::codegen::generate(&g, "`runtime/tests/fixtures/units.arch`");
    assert_eq!(
        include_str!("generated/units.rs"),
        now,
        "tests/generated/units.rs is stale: regenerate it with `archc codegen \
         runtime/tests/fixtures/units.arch -n units -o runtime/tests/generated/units.rs`"
    );
    let device = common::device();
    let dir = tempfile::tempdir().expect("tempdir");
    let seeded = dir.path().join("seeded.safetensors");
    Network::new(&g, &device, 5)
        .expect("builds")
        .save_weights(&seeded)
        .expect("saves");
    let mut state = read(&seeded);
    let norms: Vec<String> = g
        .nodes
        .iter()
        .filter(|n| n.name.contains("norm"))
        .map(|n| n.name.clone())
        .collect();
    assert_eq!(norms.len(), 4, "the units network's norms");
    move_off_defaults(&mut state, &norms);
    let moved = dir.path().join("moved.safetensors");
    write(&state, &moved);

    let mut net = Network::new(&g, &device, 0).expect("builds");
    net.load_weights(&moved).expect("loads");
    let gen = load(units::Units::new(&device), &state);
    let x = input(3).into_iter().take(3 * 3 * 8 * 8).collect::<Vec<_>>();
    let t = || Tensor::<4>::from_data(TensorData::new(x.clone(), [3, 3, 8, 8]), &device);
    let d = compare(&logits(net.forward(t())), &logits(gen.forward(t())));
    assert!(d < 1e-4, "the generated unit ops' logits differ by {d}");
}

#[test]
#[ignore = "needs the PyTorch references of scripts/parity.py in ARCHC_PARITY_DIR; CI runs it"]
fn generated_module_gives_pytorchs_logits() {
    let dir = std::path::PathBuf::from(std::env::var("ARCHC_PARITY_DIR").expect(
        "ARCHC_PARITY_DIR must name the folder scripts/parity.py wrote (python3 scripts/parity.py DIR)",
    ));
    let device = common::device();
    let state = read(&dir.join("cifar_resnet20.safetensors"));
    let gen = load(generated::CifarResnet20::new(&device), &state);
    let io = read(&dir.join("cifar_resnet20.io.safetensors"));
    let (x, xs) = &io["input"];
    let (y, _) = &io["output"];
    let x = Tensor::<4>::from_data(
        TensorData::new(x.clone(), [xs[0], xs[1], xs[2], xs[3]]),
        &device,
    );
    let d = max_diff(&logits(gen.forward(x)), y);
    println!("max |generated - pytorch| = {d:e}");
    assert!(
        d < 1e-4,
        "the generated module's logits differ from PyTorch's by {d}"
    );
}
