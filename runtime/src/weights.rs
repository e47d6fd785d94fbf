//! Weights with torchvision's state-dict names: load a PyTorch state dict (`.pth`/`.pt`) or a
//! `.safetensors` file into a [`Network`], and save one as `.safetensors`.
//!
//! Contract:
//! - keys are `{node name}.{weight|bias|running_mean|running_var}` exactly as PyTorch's
//!   `state_dict()` names them for the same architecture (`conv1.weight`, `bn1.running_var`,
//!   `layer1.0.downsample.0.weight`, `features.0.bias`, `fc.weight`); `{bn}.num_batches_tracked`
//!   is accepted and ignored on load;
//! - layouts are PyTorch's: a conv weight `[out, in/groups, kh, kw]`, a linear weight
//!   `[out, in]` (transposed to and from Burn's `[in, out]` here), batch norm weight/bias are
//!   Burn's gamma/beta;
//! - float tensors may be f32, f64, f16 or bf16 (converted to f32);
//! - loading is all or nothing: every missing, unexpected, mis-shaped or wrongly typed key is
//!   collected into one [`WeightError::Mismatch`] and nothing is applied; a file that cannot be
//!   read or parsed (truncated, garbage) is a [`WeightError::Format`]; nothing panics;
//! - a `.pth` whose tensors all sit under one prefix (`state_dict.`, `model.`, `module.`) is
//!   accepted with the prefix stripped;
//! - saving writes f32 tensors with those names plus `num_batches_tracked` = 0 (i64, shape `[]`)
//!   for every batch norm, so PyTorch's `load_state_dict(strict=True)` accepts the file; the
//!   file is written to a temporary name and renamed into place.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use burn::tensor::TensorData;

use crate::network::Network;
use crate::ops::Saved;

/// Element type of a stored tensor, as far as loading cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dt {
    F32,
    F64,
    F16,
    BF16,
    /// Not a float type; the name is for the error message.
    Other(&'static str),
}

impl Dt {
    fn size(self) -> usize {
        match self {
            Dt::F64 => 8,
            Dt::F32 => 4,
            Dt::F16 | Dt::BF16 => 2,
            Dt::Other(_) => 0,
        }
    }
}

impl fmt::Display for Dt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dt::F32 => f.write_str("f32"),
            Dt::F64 => f.write_str("f64"),
            Dt::F16 => f.write_str("f16"),
            Dt::BF16 => f.write_str("bf16"),
            Dt::Other(s) => f.write_str(s),
        }
    }
}

/// A key whose tensor has the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeMismatch {
    pub key: String,
    pub expected: Vec<usize>,
    pub found: Vec<usize>,
}

impl ShapeMismatch {
    /// Its line in an error message.
    fn line(&self) -> String {
        format!(
            "\n  wrong shape     {}: expected {}, found {}",
            self.key,
            dims(&self.expected),
            dims(&self.found)
        )
    }
}

/// Why weights could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is not a readable {format} file: {message}", path.display())]
    Format {
        path: PathBuf,
        format: &'static str,
        message: String,
    },
    /// The file is readable but does not fit the network; every problem is listed.
    #[error("{0}")]
    Mismatch(Box<Mismatch>),
    /// `--init`: tensors outside the classifier match by name but not by shape.
    #[error("{}", init_shapes_text(path, network, classifier, mis_shaped))]
    InitShapes {
        path: PathBuf,
        network: String,
        classifier: String,
        mis_shaped: Vec<ShapeMismatch>,
    },
    /// `--init`: no tensor of the file has a name of the network.
    #[error("no tensor of `{}` has a name of network `{network}` (the file has {file_keys}, ...; the network {net_keys}, ...); nothing was loaded. archc reads torchvision's names: give the network the `names` setting of its torchvision counterpart (docs/language.md)", path.display())]
    InitNothing {
        path: PathBuf,
        network: String,
        file_keys: String,
        net_keys: String,
    },
}

fn init_shapes_text(
    path: &Path,
    network: &str,
    classifier: &str,
    mis_shaped: &[ShapeMismatch],
) -> String {
    let mut s = format!(
        "--init `{}`: {} tensor{} of network `{network}` outside its classifier `{classifier}` \
         {} another shape in the file; nothing was loaded. Give --init-partial to initialise \
         them afresh (only the classifier is re-initialised without it)",
        path.display(),
        mis_shaped.len(),
        if mis_shaped.len() == 1 { "" } else { "s" },
        if mis_shaped.len() == 1 { "has" } else { "have" },
    );
    for m in mis_shaped {
        s += &m.line();
    }
    s
}

/// Every way a readable weights file fails to fit a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub path: PathBuf,
    pub network: String,
    /// Expected keys absent from the file, with the shape expected.
    pub missing: Vec<(String, Vec<usize>)>,
    /// Keys in the file the network has no place for, with their shape.
    pub unexpected: Vec<(String, Vec<usize>)>,
    pub mis_shaped: Vec<ShapeMismatch>,
    /// Keys holding a non-float tensor, with its element type.
    pub wrong_dtype: Vec<(String, String)>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mismatch_text(
            &self.path,
            &self.network,
            &self.missing,
            &self.unexpected,
            &self.mis_shaped,
            &self.wrong_dtype,
        ))
    }
}

fn dims(v: &[usize]) -> String {
    format!("{v:?}")
}

fn mismatch_text(
    path: &Path,
    network: &str,
    missing: &[(String, Vec<usize>)],
    unexpected: &[(String, Vec<usize>)],
    mis_shaped: &[ShapeMismatch],
    wrong_dtype: &[(String, String)],
) -> String {
    let mut counts = Vec::new();
    for (n, what) in [
        (missing.len(), "missing"),
        (unexpected.len(), "unexpected"),
        (mis_shaped.len(), "mis-shaped"),
        (wrong_dtype.len(), "wrongly typed"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {what}"));
        }
    }
    let mut s = format!(
        "weights `{}` do not fit network `{network}` ({}); nothing was loaded",
        path.display(),
        counts.join(", ")
    );
    for (k, d) in missing {
        s += &format!("\n  missing key     {k} {}", dims(d));
    }
    for (k, d) in unexpected {
        s += &format!("\n  unexpected key  {k} {}", dims(d));
    }
    for m in mis_shaped {
        s += &m.line();
    }
    for (k, t) in wrong_dtype {
        s += &format!("\n  wrong dtype     {k}: {t}, expected a float tensor");
    }
    s
}

/// What [`Network::load_init`] did, by key (`layer1.0.conv1.weight`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitReport {
    /// Tensors taken from the file, in the network's order.
    pub loaded: Vec<String>,
    /// Tensors left to the network's own initialisation, with why.
    pub reinitialised: Vec<(String, String)>,
    /// Keys of the file the network has no place for (`num_batches_tracked` among them).
    pub ignored: Vec<String>,
}

/// What a successful load did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Number of tensors applied.
    pub applied: usize,
    /// Keys present in the file and deliberately ignored (`num_batches_tracked`).
    pub ignored: Vec<String>,
}

/// One tensor the network expects: its key and PyTorch shape.
struct Slot {
    key: String,
    shape: Vec<usize>,
}

/// The keys of a network, in node order, with PyTorch shapes.
fn slots(net: &Network) -> Vec<Slot> {
    let mut out = Vec::new();
    for n in &net.plan.graph.nodes {
        let mut add = |suffix: &str, shape: Vec<usize>| {
            out.push(Slot {
                key: format!("{}.{suffix}", n.name),
                shape,
            })
        };
        for (suffix, shape) in n.op.param_shapes().into_iter().chain(n.op.buffer_shapes()) {
            add(suffix, shape);
        }
    }
    out
}

/// Whether a file's tensor of shape `found` fills a slot of shape `expected`: the same shape,
/// or a 1x1 conv's `[out, in, 1, 1]` weight stored as `nn.Linear`'s `[out, in]` (the same
/// numbers in the same order: torchvision's ConvNeXt writes its pointwise layers as linears on
/// channels-last maps, archc as 1x1 convs). Saving writes the conv's shape.
fn same_layout(expected: &[usize], found: &[usize]) -> bool {
    expected == found || matches!(expected, [o, i, 1, 1] if found == [*o, *i])
}

/// The values of file tensor `orig` for slot `s` (as f32), or a format error if it cannot be
/// read or does not hold the slot's number of values.
fn read_values(
    path: &Path,
    read: &dyn Fn(&str) -> Result<Vec<u8>, String>,
    orig: &str,
    s: &Slot,
    e: &Entry,
) -> Result<Vec<f32>, WeightError> {
    let format = |message| WeightError::Format {
        path: path.to_path_buf(),
        format: "weights",
        message,
    };
    let bytes = read(orig).map_err(format)?;
    let n: usize = s.shape.iter().product();
    if bytes.len() != n * e.dtype.size() {
        return Err(format(format!(
            "{} holds {} bytes, expected {}",
            s.key,
            bytes.len(),
            n * e.dtype.size()
        )));
    }
    Ok(to_f32(e.dtype, &bytes))
}

/// A readable weights file: its tensors' metadata and a way to read one tensor's bytes.
struct Entry {
    dtype: Dt,
    shape: Vec<usize>,
}

fn to_f32(dtype: Dt, bytes: &[u8]) -> Vec<f32> {
    match dtype {
        Dt::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dt::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        Dt::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dt::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dt::Other(_) => Vec::new(),
    }
}

fn st_dtype(d: safetensors::Dtype) -> Dt {
    use safetensors::Dtype as S;
    match d {
        S::F32 => Dt::F32,
        S::F64 => Dt::F64,
        S::F16 => Dt::F16,
        S::BF16 => Dt::BF16,
        S::I64 => Dt::Other("i64"),
        S::I32 => Dt::Other("i32"),
        S::I16 => Dt::Other("i16"),
        S::I8 => Dt::Other("i8"),
        S::U8 => Dt::Other("u8"),
        S::BOOL => Dt::Other("bool"),
        _ => Dt::Other("non-float"),
    }
}

fn pt_dtype(d: pytorch_reader::DType) -> Dt {
    use pytorch_reader::DType as P;
    match d {
        P::F32 => Dt::F32,
        P::F64 => Dt::F64,
        P::F16 => Dt::F16,
        P::BF16 => Dt::BF16,
        P::I64 => Dt::Other("i64"),
        P::I32 => Dt::Other("i32"),
        P::I16 => Dt::Other("i16"),
        P::I8 => Dt::Other("i8"),
        P::U64 => Dt::Other("u64"),
        P::U32 => Dt::Other("u32"),
        P::U16 => Dt::Other("u16"),
        P::U8 => Dt::Other("u8"),
        P::Bool => Dt::Other("bool"),
    }
}

/// Strip one prefix that every key shares (`state_dict.`, `model.`, `module.`), repeatedly.
fn strip_common_prefix(mut keys: Vec<(String, String)>) -> Vec<(String, String)> {
    loop {
        let prefix = ["state_dict.", "model_state_dict.", "model.", "module."]
            .into_iter()
            .find(|p| !keys.is_empty() && keys.iter().all(|(k, _)| k.starts_with(p)));
        match prefix {
            Some(p) => {
                for (k, _) in &mut keys {
                    k.drain(..p.len());
                }
            }
            None => return keys,
        }
    }
}

fn is_safetensors(path: &Path, head: &[u8]) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some("safetensors") => true,
        Some("pth" | "pt" | "bin" | "ckpt") => false,
        // A PyTorch file is a zip (`PK`), a tar, or a legacy pickle (`\x80`).
        _ => !(head.starts_with(b"PK") || head.first() == Some(&0x80)),
    }
}

/// Open a `.safetensors` or PyTorch weights file and hand `f` its tensors' metadata (key,
/// key in the file, metadata) and a reader of one tensor's bytes.
fn read_file<R>(
    path: &Path,
    f: impl FnOnce(
        Vec<(String, String, Entry)>,
        &dyn Fn(&str) -> Result<Vec<u8>, String>,
    ) -> Result<R, WeightError>,
) -> Result<R, WeightError> {
    let io = |source| WeightError::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    };
    let mut head = [0u8; 8];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path).map_err(io)?;
        let n = f.read(&mut head).map_err(io)?;
        if n == 0 {
            return Err(WeightError::Format {
                path: path.to_path_buf(),
                format: "weights",
                message: "the file is empty".into(),
            });
        }
    }
    if is_safetensors(path, &head) {
        let buf = std::fs::read(path).map_err(io)?;
        let format = |e: safetensors::SafeTensorError| WeightError::Format {
            path: path.to_path_buf(),
            format: "safetensors",
            message: e.to_string(),
        };
        let st = safetensors::SafeTensors::deserialize(&buf).map_err(format)?;
        let entries = st
            .iter()
            .map(|(k, v)| {
                let e = Entry {
                    dtype: st_dtype(v.dtype()),
                    shape: v.shape().to_vec(),
                };
                (k.to_string(), k.to_string(), e)
            })
            .collect();
        f(entries, &|k| {
            st.tensor(k)
                .map(|v| v.data().to_vec())
                .map_err(|e| e.to_string())
        })
    } else {
        let format = |message: String| WeightError::Format {
            path: path.to_path_buf(),
            format: "PyTorch",
            message,
        };
        // The reader parses the pickle only; tensor bytes are read on demand.
        let reader = pytorch_reader::PytorchReader::new(path).map_err(|e| format(e.to_string()))?;
        let tensors = reader.tensors();
        let keys = strip_common_prefix(tensors.keys().map(|k| (k.clone(), k.clone())).collect());
        let entries = keys
            .into_iter()
            .filter_map(|(k, orig)| {
                let t = tensors.get(&orig)?;
                let e = Entry {
                    dtype: pt_dtype(t.dtype()),
                    shape: t.shape().to_vec(),
                };
                Some((k, orig, e))
            })
            .collect();
        f(entries, &|orig| match tensors.get(orig) {
            Some(t) => t.read().map_err(|e| e.to_string()),
            None => Err(format!("tensor {orig} vanished")),
        })
    }
}

impl Network {
    /// Load weights from a `.safetensors` or PyTorch (`.pth`/`.pt`) file with torchvision
    /// names. All or nothing: on any error the network is unchanged. See [`crate::weights`].
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<LoadReport, WeightError> {
        let path = path.as_ref();
        read_file(path, |entries, read| self.apply(path, entries, read))
    }

    /// Start from the weights of `path` (`archc train --init`): every tensor whose name and
    /// shape match is loaded; the others keep this network's own initialisation. A tensor of
    /// the classifier (the last layer with weights) whose shape differs (another class count)
    /// is initialised afresh; elsewhere a shape that differs is refused with
    /// [`WeightError::InitShapes`] unless `partial`. A file none of whose names match is
    /// refused too (another naming scheme). Nothing is changed on an error.
    pub fn load_init(
        &mut self,
        path: impl AsRef<Path>,
        partial: bool,
    ) -> Result<InitReport, WeightError> {
        let path = path.as_ref();
        read_file(path, |entries, read| {
            self.apply_init(path, entries, read, partial)
        })
    }

    /// The weight names (`layer1.0.conv1`) of the layers, in the order of [`Network::layers`].
    pub fn layer_names(&self) -> Vec<String> {
        let mut names = vec![String::new(); self.layers.len()];
        for n in &self.plan.graph.nodes {
            if let Some(l) = self.plan.layer[n.id] {
                names[l] = n.name.clone();
            }
        }
        names
    }

    fn apply_init(
        &mut self,
        path: &Path,
        entries: Vec<(String, String, Entry)>,
        read: &dyn Fn(&str) -> Result<Vec<u8>, String>,
        partial: bool,
    ) -> Result<InitReport, WeightError> {
        let slots = slots(self);
        // The classifier: the last node that has parameters.
        let classifier = self
            .plan
            .graph
            .nodes
            .iter()
            .rev()
            .find(|n| !n.op.param_shapes().is_empty())
            .map(|n| n.name.clone())
            .unwrap_or_default();
        let in_classifier = |key: &str| {
            key.strip_prefix(classifier.as_str())
                .is_some_and(|r| r.starts_with('.') && !r[1..].contains('.'))
        };
        let file: HashMap<&str, (&str, &Entry)> = entries
            .iter()
            .map(|(k, orig, e)| (k.as_str(), (orig.as_str(), e)))
            .collect();
        let mut report = InitReport::default();
        let mut mis_shaped = Vec::new();
        let mut load: Vec<(&Slot, &str, &Entry)> = Vec::new();
        for s in &slots {
            match file.get(s.key.as_str()) {
                None => report
                    .reinitialised
                    .push((s.key.clone(), "not in the file".to_string())),
                Some((orig, e)) => {
                    let why = if let Dt::Other(t) = e.dtype {
                        format!("{t} in the file, not a float tensor")
                    } else if !same_layout(&s.shape, &e.shape) {
                        format!(
                            "{} in the file, {} here{}",
                            dims(&e.shape),
                            dims(&s.shape),
                            if in_classifier(&s.key) {
                                " (the classifier)"
                            } else {
                                ""
                            }
                        )
                    } else {
                        load.push((s, *orig, *e));
                        continue;
                    };
                    if !(partial || in_classifier(&s.key)) {
                        mis_shaped.push(ShapeMismatch {
                            key: s.key.clone(),
                            expected: s.shape.clone(),
                            found: e.shape.clone(),
                        });
                    }
                    report.reinitialised.push((s.key.clone(), why));
                }
            }
        }
        let expected: HashSet<&str> = slots.iter().map(|s| s.key.as_str()).collect();
        report.ignored = entries
            .iter()
            .filter(|(k, _, _)| !expected.contains(k.as_str()))
            .map(|(k, _, _)| k.clone())
            .collect();
        report.ignored.sort();
        if !mis_shaped.is_empty() {
            return Err(WeightError::InitShapes {
                path: path.to_path_buf(),
                network: self.plan.graph.network.clone(),
                classifier,
                mis_shaped,
            });
        }
        if load.is_empty() && !slots.is_empty() {
            let mut some: Vec<&str> = entries.iter().map(|(k, _, _)| k.as_str()).collect();
            some.sort();
            some.truncate(3);
            return Err(WeightError::InitNothing {
                path: path.to_path_buf(),
                network: self.plan.graph.network.clone(),
                file_keys: some.join(", "),
                net_keys: slots
                    .iter()
                    .take(3)
                    .map(|s| s.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        // Read everything before touching the network, so a read error changes nothing.
        let mut data: HashMap<String, Vec<f32>> = HashMap::new();
        for (s, orig, e) in &load {
            data.insert(s.key.clone(), read_values(path, read, orig, s, e)?);
        }
        report.loaded = load.iter().map(|(s, _, _)| s.key.clone()).collect();
        let plan = self.plan.clone();
        for (n, op) in plan.graph.nodes.iter().zip(&plan.ops) {
            let (Some(l), Some(op)) = (plan.layer[n.id], op) else {
                continue;
            };
            let prefix = format!("{}.", n.name);
            if !data.keys().any(|k| k.starts_with(&prefix)) {
                continue;
            }
            // The node's other tensors keep their values (their own initialisation).
            let mut own: HashMap<&str, Vec<f32>> = HashMap::new();
            for saved in op.save(&self.layers[l]) {
                if let Saved::F32(suffix, t) = saved {
                    own.insert(
                        suffix,
                        t.convert::<f32>().try_to_vec::<f32>().unwrap_or_default(),
                    );
                }
            }
            op.load(&mut self.layers[l], &mut |suffix| {
                data.remove(&format!("{prefix}{suffix}"))
                    .or_else(|| own.remove(suffix))
                    .unwrap_or_default()
            });
        }
        Ok(report)
    }

    /// Check `entries` (key, key in the file, metadata) against the network, then read and
    /// apply every tensor.
    fn apply(
        &mut self,
        path: &Path,
        entries: Vec<(String, String, Entry)>,
        read: &dyn Fn(&str) -> Result<Vec<u8>, String>,
    ) -> Result<LoadReport, WeightError> {
        let slots = slots(self);
        // Keys the nodes' ops accept and ignore (batch norm's `num_batches_tracked`).
        let ignorable: HashSet<String> = self
            .plan
            .graph
            .nodes
            .iter()
            .zip(&self.plan.ops)
            .flat_map(|(n, op)| {
                let suffixes = op.as_ref().map_or(&[][..], |op| op.ignored_keys());
                suffixes.iter().map(move |s| format!("{}.{s}", n.name))
            })
            .collect();
        let file: HashMap<&str, (&str, &Entry)> = entries
            .iter()
            .map(|(k, orig, e)| (k.as_str(), (orig.as_str(), e)))
            .collect();
        let expected: HashSet<&str> = slots.iter().map(|s| s.key.as_str()).collect();
        let mut missing = Vec::new();
        let mut mis_shaped = Vec::new();
        let mut wrong_dtype = Vec::new();
        for s in &slots {
            match file.get(s.key.as_str()) {
                None => missing.push((s.key.clone(), s.shape.clone())),
                Some((_, e)) => {
                    if let Dt::Other(t) = e.dtype {
                        wrong_dtype.push((s.key.clone(), t.to_string()));
                    } else if !same_layout(&s.shape, &e.shape) {
                        mis_shaped.push(ShapeMismatch {
                            key: s.key.clone(),
                            expected: s.shape.clone(),
                            found: e.shape.clone(),
                        });
                    }
                }
            }
        }
        let mut unexpected = Vec::new();
        let mut ignored = Vec::new();
        for (k, _, e) in &entries {
            if expected.contains(k.as_str()) {
                continue;
            }
            if ignorable.contains(k) {
                ignored.push(k.clone());
            } else {
                unexpected.push((k.clone(), e.shape.clone()));
            }
        }
        unexpected.sort();
        ignored.sort();
        if !(missing.is_empty()
            && unexpected.is_empty()
            && mis_shaped.is_empty()
            && wrong_dtype.is_empty())
        {
            return Err(WeightError::Mismatch(Box::new(Mismatch {
                path: path.to_path_buf(),
                network: self.plan.graph.network.clone(),
                missing,
                unexpected,
                mis_shaped,
                wrong_dtype,
            })));
        }
        // Read everything before touching the network, so a read error changes nothing.
        let mut data: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
        for s in &slots {
            let Some((orig, e)) = file.get(s.key.as_str()) else {
                continue;
            };
            data.insert(s.key.as_str(), read_values(path, read, orig, s, e)?);
        }
        let applied = data.len();
        let mut take = |key: String| data.remove(key.as_str()).unwrap_or_default();
        let plan = self.plan.clone();
        for (n, op) in plan.graph.nodes.iter().zip(&plan.ops) {
            let (Some(l), Some(op)) = (plan.layer[n.id], op) else {
                continue;
            };
            op.load(&mut self.layers[l], &mut |suffix| {
                take(format!("{}.{suffix}", n.name))
            });
        }
        Ok(LoadReport { applied, ignored })
    }

    /// Save the weights (and batch norm running statistics) as `.safetensors` with
    /// torchvision's names and layouts. Save a training network's `valid()` or the network
    /// itself after training: running statistics are synchronised here.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<(), WeightError> {
        let path = path.as_ref();
        let mut tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        let f32s = |t: TensorData| -> Vec<u8> {
            let t = t.convert::<f32>();
            t.as_bytes().to_vec()
        };
        for (n, op) in self.plan.graph.nodes.iter().zip(&self.plan.ops) {
            let (Some(l), Some(op)) = (self.plan.layer[n.id], op) else {
                continue;
            };
            for saved in op.save(&self.layers[l]) {
                tensors.push(match saved {
                    Saved::F32(suffix, t) => (
                        format!("{}.{suffix}", n.name),
                        safetensors::Dtype::F32,
                        t.shape().to_vec(),
                        f32s(t),
                    ),
                    Saved::I64(suffix, v) => (
                        format!("{}.{suffix}", n.name),
                        safetensors::Dtype::I64,
                        Vec::new(),
                        v.to_le_bytes().to_vec(),
                    ),
                });
            }
        }
        let views = tensors
            .iter()
            .map(|(k, dt, shape, bytes)| {
                safetensors::tensor::TensorView::new(*dt, shape.clone(), bytes)
                    .map(|v| (k.as_str(), v))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| WeightError::Format {
                path: path.to_path_buf(),
                format: "safetensors",
                message: e.to_string(),
            })?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let io = |source| WeightError::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        };
        safetensors::serialize_to_file(views, None, &tmp).map_err(|e| match e {
            safetensors::SafeTensorError::IoError(source) => io(source),
            e => WeightError::Format {
                path: path.to_path_buf(),
                format: "safetensors",
                message: e.to_string(),
            },
        })?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}
