//! Progress output: an indicatif bar on a terminal, one plain line per metric row otherwise
//! (so CI logs stay readable), or nothing.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use super::metrics::Row;

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar when stderr is a terminal, lines otherwise.
    Auto,
    Bar,
    Lines,
    Quiet,
}

pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    lines: bool,
    total: u64,
}

impl Progress {
    pub(crate) fn new(mode: ProgressMode, start: u64, total: u64) -> Self {
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Bar,
            ProgressMode::Auto => ProgressMode::Lines,
            m => m,
        };
        let bar = (mode == ProgressMode::Bar).then(|| {
            let b = ProgressBar::new(total);
            if let Ok(style) =
                ProgressStyle::with_template("{bar:30} {pos}/{len} it  {msg}  ETA {eta}")
            {
                b.set_style(style);
            }
            b.set_position(start);
            b.reset_eta();
            b
        });
        Progress {
            bar,
            lines: mode == ProgressMode::Lines,
            total,
        }
    }

    /// After each step: move the bar.
    pub(crate) fn step(&self, iteration: u64) {
        if let Some(b) = &self.bar {
            b.set_position(iteration);
        }
    }

    /// At each metric row.
    pub(crate) fn row(&self, r: &Row, eta_s: Option<f64>) {
        let pct = |v: Option<f64>| v.map(|e| format!("{:.2}%", e * 100.0));
        let mut parts = Vec::new();
        if let Some(l) = r.train_loss {
            parts.push(format!("loss {l:.4}"));
        }
        if let Some(e) = pct(r.train_error) {
            parts.push(format!("train err {e}"));
        }
        if let Some(e) = pct(r.val_error) {
            parts.push(format!("val err {e}"));
        }
        if let Some(e) = pct(r.test_error) {
            parts.push(format!("test err {e}"));
        }
        if let Some(e) = pct(r.test_top5_error) {
            parts.push(format!("top-5 {e}"));
        }
        if let Some(s) = r.images_per_s {
            parts.push(format!("{s:.0} img/s"));
        }
        if let Some(b) = &self.bar {
            b.set_message(parts.join("  "));
        } else if self.lines {
            let eta = eta_s
                .map(|s| format!("  ETA {}", hms(s)))
                .unwrap_or_default();
            eprintln!(
                "iter {}/{}  epoch {}  lr {}  {}{eta}",
                r.iteration,
                self.total,
                r.epoch,
                // Shortest form that reads back as the same f32: 0.1 * 0.1 * 0.25 is shown as
                // 0.0025, not 0.0025000000000000005 (metrics.csv keeps the f64 as computed).
                r.lr as f32,
                parts.join("  ")
            );
        }
    }

    pub(crate) fn message(&self, m: &str) {
        if let Some(b) = &self.bar {
            b.println(m);
        } else if self.lines {
            eprintln!("{m}");
        }
    }

    /// A warning: shown in every mode, `--progress quiet` too.
    pub(crate) fn warn(&self, m: &str) {
        if let Some(b) = &self.bar {
            b.println(format!("warning: {m}"));
        } else {
            eprintln!("warning: {m}");
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}

fn hms(s: f64) -> String {
    let s = s.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
