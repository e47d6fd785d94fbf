//! `archc eval`: top-1 (and top-5) error of weights on a data set; with `--per-class`, each
//! class's error and the confusion matrix; as text or JSON.

use std::path::Path;

use archc_compiler::Overrides;

use super::Failure;

/// How to evaluate and what to print (read only by the runtime build).
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "runtime"), allow(dead_code))]
pub struct Options {
    pub batch_size: usize,
    pub per_class: bool,
    pub json: bool,
    /// `--ten-crop` and `--scales`: the paper's ImageNet testing.
    pub ten_crop: bool,
    pub scales: Vec<usize>,
}

/// The text form shows the confusion matrix up to this many classes (JSON always has it).
#[cfg_attr(not(feature = "runtime"), allow(dead_code))]
const TEXT_MATRIX_CLASSES: usize = 20;

#[cfg(not(feature = "runtime"))]
pub fn run(
    _file: &Path,
    _network: &str,
    _weights: &Path,
    _data: &str,
    _device: &str,
    _opts: Options,
    _ov: &Overrides,
) -> Result<(), Failure> {
    super::needs_runtime("eval")
}

#[cfg(feature = "runtime")]
pub fn run(
    file: &Path,
    network: &str,
    weights: &Path,
    data: &str,
    device: &str,
    opts: Options,
    ov: &Overrides,
) -> Result<(), Failure> {
    use archc_runtime::data::DataSpec;
    use archc_runtime::train::{self, Confusion};

    if opts.batch_size == 0 {
        eprintln!("archc: --batch-size must be at least 1");
        return Err(Failure::Usage);
    }
    let spec: DataSpec = data.parse().map_err(|e| {
        eprintln!("archc: {e}");
        Failure::Usage
    })?;
    if let Some(s) = opts.scales.iter().find(|&&s| s == 0) {
        eprintln!("archc: --scales: a scale of {s} pixels; give shorter sides such as 224,256");
        return Err(Failure::Usage);
    }
    let graph = super::lowered(file, network, ov)?;
    let device = super::device(device)?;
    let mut confusion = Confusion::new(0);
    // The file is read and compiled again only for views of another size (--scales).
    let at_size = if opts.scales.is_empty() {
        None
    } else {
        Some(super::AtSize::new(file, network, ov, graph.clone())?)
    };
    let compile = |chw: [usize; 3]| match &at_size {
        Some(a) => a.graph(chw),
        None => Err("only --scales tests at other sizes".to_string()),
    };
    let testing = train::Testing {
        views: archc_runtime::data::TestViews {
            ten_crop: opts.ten_crop,
            scales: opts.scales.clone(),
        },
        at_size: &compile,
    };
    let (r, name) = train::evaluate_weights(
        &graph,
        weights,
        &spec,
        &device,
        opts.batch_size,
        opts.per_class.then_some(&mut confusion),
        Some(&testing),
    )
    .map_err(|e| {
        eprintln!("archc: {e}");
        Failure::Input
    })?;
    let confusion = opts.per_class.then_some(&confusion);
    if opts.json {
        let mut v = serde_json::json!({
            "network": network,
            "data": name,
            "images": r.images,
            "top1_error": r.top1_error,
            "top5_error": r.top5_error,
            "loss": r.loss,
            "views": views_json(&opts),
        });
        if let Some(c) = confusion {
            let per_class: Vec<_> = (0..c.classes)
                .map(|k| {
                    serde_json::json!({
                        "class": k,
                        "images": c.images(k),
                        "error": c.error(k),
                    })
                })
                .collect();
            let rows: Vec<&[u64]> = (0..c.classes).map(|k| c.row(k)).collect();
            v["per_class"] = per_class.into();
            v["confusion"] = serde_json::json!(rows);
        }
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    println!("{network} on {name}");
    if opts.ten_crop || !opts.scales.is_empty() {
        println!("testing      {}", views_text(&opts));
    }
    println!("top-1 error  {:.2}%", r.top1_error * 100.0);
    if let Some(t5) = r.top5_error {
        println!("top-5 error  {:.2}%", t5 * 100.0);
    }
    println!("loss         {:.4}", r.loss);
    if let Some(c) = confusion {
        print!("{}", per_class_text(c));
    }
    Ok(())
}

/// The views averaged per image, in words.
#[cfg(feature = "runtime")]
fn views_text(opts: &Options) -> String {
    let scales = opts
        .scales
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    match (opts.ten_crop, opts.scales.is_empty()) {
        (true, true) => "10 crops (corners, centre, mirrored), probabilities averaged".into(),
        (true, false) => format!(
            "10 crops at each shorter side {scales} ({} views), probabilities averaged",
            10 * opts.scales.len()
        ),
        _ => format!(
            "whole image at shorter sides {scales}, fully convolutional, probabilities averaged"
        ),
    }
}

/// The views in JSON: `{"ten_crop": bool, "scales": [..], "per_image": n}` (1 view: the
/// centre crop).
#[cfg(feature = "runtime")]
fn views_json(opts: &Options) -> serde_json::Value {
    let per_image = opts.scales.len().max(1) * if opts.ten_crop { 10 } else { 1 };
    serde_json::json!({
        "ten_crop": opts.ten_crop,
        "scales": opts.scales,
        "per_image": per_image,
    })
}

/// Each class's images and top-1 error, then the confusion matrix (label by row, predicted
/// class by column) when there are at most [`TEXT_MATRIX_CLASSES`] classes.
#[cfg(feature = "runtime")]
fn per_class_text(c: &archc_runtime::train::Confusion) -> String {
    use archc_compiler::report::{thousands, TextTable};

    let mut out = String::from("\nper class (top-1 error)\n");
    let mut t = TextTable::new(&["class", "images", "error"], &[true, true, true]);
    for k in 0..c.classes {
        t.row(vec![
            k.to_string(),
            thousands(c.images(k) as u128),
            c.error(k)
                .map(|e| format!("{:.2}%", e * 100.0))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    out.push_str(&t.render());
    if c.classes > TEXT_MATRIX_CLASSES {
        out.push_str(&format!(
            "\nconfusion matrix: {} classes, in `--format json` only\n",
            c.classes
        ));
        return out;
    }
    out.push_str("\nconfusion matrix (rows: label, columns: predicted)\n");
    let header: Vec<String> = std::iter::once("label".to_string())
        .chain((0..c.classes).map(|k| k.to_string()))
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut m = TextTable::new(&header, &vec![true; c.classes + 1]);
    for k in 0..c.classes {
        m.row(
            std::iter::once(k.to_string())
                .chain(c.row(k).iter().map(|n| n.to_string()))
                .collect(),
        );
    }
    out.push_str(&m.render());
    out
}
