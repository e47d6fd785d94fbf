//! The metrics of a run: one row per logging or evaluation point, written as `metrics.csv`
//! and `metrics.jsonl` (the same rows). Errors are fractions in [0, 1]; a value not measured
//! at a row is empty in the CSV and `null` in JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Row {
    /// SGD steps done.
    pub iteration: u64,
    /// Mean training loss over the images since the previous row.
    pub train_loss: Option<f64>,
    /// Top-1 training error over the images since the previous row (on augmented inputs, in
    /// training mode, as the paper's curves).
    pub train_error: Option<f64>,
    /// Top-1 error on the test split.
    pub test_error: Option<f64>,
    /// Top-5 error on the test split (more than 10 classes).
    pub test_top5_error: Option<f64>,
    /// Top-1 error on the held-out validation images.
    pub val_error: Option<f64>,
    pub lr: f64,
    pub epoch: u64,
    /// Training throughput since the previous row (timing: differs between runs).
    pub images_per_s: Option<f64>,
    /// Wall-clock seconds of training so far (timing: differs between runs).
    pub elapsed_s: f64,
}

const COLUMNS: &str = "iteration,train_loss,train_error,test_error,test_top5_error,val_error,lr,epoch,images_per_s,elapsed_s";

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

/// The rows as CSV (with a header).
pub fn to_csv(rows: &[Row]) -> String {
    let mut s = String::from(COLUMNS);
    s.push('\n');
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{},{},{},{},{},{},{:.3}",
            r.iteration,
            opt(r.train_loss),
            opt(r.train_error),
            opt(r.test_error),
            opt(r.test_top5_error),
            opt(r.val_error),
            r.lr,
            r.epoch,
            opt(r.images_per_s.map(|x| (x * 10.0).round() / 10.0)),
            r.elapsed_s
        );
    }
    s
}

/// The rows as JSON lines.
pub fn to_jsonl(rows: &[Row]) -> String {
    let mut s = String::new();
    for r in rows {
        // Rows hold only numbers and options: serialisation cannot fail.
        s.push_str(&serde_json::to_string(r).unwrap_or_default());
        s.push('\n');
    }
    s
}

/// Read `metrics.jsonl` of a run folder.
pub fn read(run: &Path) -> Result<Vec<Row>, String> {
    let path = run.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| format!("`{}` line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Write both files of `rows` into `run`, each atomically.
pub fn write(run: &Path, rows: &[Row]) -> std::io::Result<()> {
    super::write_atomic(&run.join("metrics.csv"), to_csv(rows).as_bytes())?;
    super::write_atomic(&run.join("metrics.jsonl"), to_jsonl(rows).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A resumed run reads its rows back and writes them again: every f64 must come back as
    /// it was written (serde_json's `float_roundtrip`; without it 1.8900238275527954 reads
    /// back as 1.8900238275527952, found by scripts/killloop.sh).
    #[test]
    fn rows_read_back_bit_for_bit() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Every mantissa bit random, in [1, 2).
            f64::from_bits(0x3FF0_0000_0000_0000 | (x >> 12))
        };
        let mut rows: Vec<Row> = (0..2000)
            .map(|i| Row {
                iteration: i,
                train_loss: Some(next()),
                train_error: Some(next() / 3.0),
                test_error: (i % 3 == 0).then(&mut next),
                lr: 0.1,
                epoch: i / 10,
                elapsed_s: next() * 1000.0,
                ..Row::default()
            })
            .collect();
        rows[0].train_loss = Some(1.890_023_827_552_795_4);
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), &rows).expect("write");
        let back = read(dir.path()).expect("read");
        for (a, b) in rows.iter().zip(&back) {
            assert_eq!(
                a.train_loss.map(f64::to_bits),
                b.train_loss.map(f64::to_bits)
            );
            assert_eq!(
                a.train_error.map(f64::to_bits),
                b.train_error.map(f64::to_bits)
            );
            assert_eq!(
                a.test_error.map(f64::to_bits),
                b.test_error.map(f64::to_bits)
            );
            assert_eq!(a.elapsed_s.to_bits(), b.elapsed_s.to_bits());
        }
        assert_eq!(rows.len(), back.len());
    }
}
