//! `archc layers [KIND] [--format json]`: every layer kind as its op unit describes it (its
//! arguments, defaults, shape rule, counting rule and training rule), as `ruff rule` prints
//! its rules.

use archc_compiler::layers::{self, Unit};
use serde_json::{json, Value};

use super::Failure;
use crate::cli::LayersFormat;

fn to_json(u: &Unit) -> Value {
    let s = u.signature;
    json!({
        "name": u.name,
        "summary": u.summary,
        "positional": s.positional.iter().enumerate().map(|(i, p)| json!({
            "name": p,
            "required": i < s.required,
        })).collect::<Vec<_>>(),
        "named": s.named,
        "defaults": u.defaults.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "example": s.example,
        "shape_rule": u.shape_rule,
        "cost_rule": u.cost_rule,
        "training_rule": u.training_rule,
    })
}

fn to_text(u: &Unit) -> String {
    let s = u.signature;
    let mut out = format!("{}: {}\n", u.name, u.summary);
    out += &format!("  example     {}\n", s.example);
    if !s.positional.is_empty() {
        let args: Vec<String> = s
            .positional
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if i < s.required {
                    p.to_string()
                } else {
                    format!("[{p}]")
                }
            })
            .collect();
        out += &format!("  positional  {}\n", args.join(", "));
    }
    if !s.named.is_empty() {
        out += &format!("  named       {}\n", s.named.join(", "));
    }
    for (k, v) in u.defaults {
        out += &format!("  {k:<11} default: {v}\n");
    }
    out += &format!("  shape       {}\n", u.shape_rule);
    out += &format!("  counts      {}\n", u.cost_rule);
    out += &format!("  training    {}\n", u.training_rule);
    out
}

pub fn run(kind: Option<&str>, format: LayersFormat) -> Result<(), Failure> {
    let units = match kind {
        None => layers::units(),
        Some(k) => match layers::unit(k) {
            Some(u) => vec![u],
            None => {
                let names: Vec<&str> = layers::units().iter().map(|u| u.name).collect();
                let close = names
                    .iter()
                    .map(|n| (archc_grammar::edit_distance(k, n), n))
                    .filter(|(d, n)| *d <= 2.max(n.len() / 3))
                    .min_by_key(|(d, _)| *d)
                    .map(|(_, n)| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                eprintln!(
                    "archc: no layer kind `{k}`{close}; the kinds are {}",
                    names.join(", ")
                );
                return Err(Failure::Usage);
            }
        },
    };
    let text = match format {
        LayersFormat::Json => {
            let v: Vec<Value> = units.iter().map(to_json).collect();
            serde_json::to_string_pretty(&v).expect("JSON values serialise") + "\n"
        }
        LayersFormat::Text => {
            let texts: Vec<String> = units.iter().map(to_text).collect();
            texts.join("\n")
        }
    };
    // A closed pipe (`archc layers | head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    Ok(())
}
