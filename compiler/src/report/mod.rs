//! Reports over analysed networks: terminal tables, JSON, Markdown, and the paper's Table 1.

pub mod figure;
pub mod markdown;
pub mod paper;
pub mod table;
pub mod training;

use crate::analysis::NetworkReport;

/// The JSON report: an array with one object per network. Other tools read this; keep the
/// field names stable (see docs/language.md, "Reports").
pub fn json(reports: &[NetworkReport]) -> String {
    serde_json::to_string_pretty(reports).expect("reports serialise")
}

/// `11,689,512`
pub fn thousands(n: u128) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `1.814 G`, `118.0 M`, `9.4 K`: three significant decimals for G, one otherwise.
pub fn si(n: u128) -> String {
    let f = n as f64;
    if n >= 1_000_000_000_000 {
        format!("{:.3} T", f / 1e12)
    } else if n >= 1_000_000_000 {
        format!("{:.3} G", f / 1e9)
    } else if n >= 1_000_000 {
        format!("{:.1} M", f / 1e6)
    } else if n >= 1_000 {
        format!("{:.1} K", f / 1e3)
    } else {
        n.to_string()
    }
}

/// `44.6 MiB`
pub fn bytes(n: u128) -> String {
    let f = n as f64;
    if n >= 1 << 30 {
        format!("{:.2} GiB", f / (1u64 << 30) as f64)
    } else if n >= 1 << 20 {
        format!("{:.1} MiB", f / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// A plain text table with aligned columns; cells may hold several lines.
pub struct TextTable {
    header: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
    rules: Vec<usize>,
}

impl TextTable {
    pub fn new(header: &[&str], right: &[bool]) -> Self {
        TextTable {
            header: header.iter().map(|s| s.to_string()).collect(),
            right: right.to_vec(),
            rows: vec![],
            rules: vec![],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// A horizontal rule before the next row.
    pub fn rule(&mut self) {
        self.rules.push(self.rows.len());
    }

    pub fn render(&self) -> String {
        let n = self.header.len();
        let width = |s: &str| s.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        let mut w: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                w[i] = w[i].max(width(c));
            }
        }
        let line = |cells: &[String], out: &mut String| {
            let height = cells
                .iter()
                .map(|c| c.lines().count().max(1))
                .max()
                .unwrap_or(1);
            for k in 0..height {
                let mut l = String::new();
                for (i, width) in w.iter().enumerate() {
                    let text = cells.get(i).and_then(|c| c.lines().nth(k)).unwrap_or("");
                    let pad = width - text.chars().count();
                    if i > 0 {
                        l.push_str("  ");
                    }
                    if self.right.get(i).copied().unwrap_or(false) {
                        l.push_str(&" ".repeat(pad));
                        l.push_str(text);
                    } else {
                        l.push_str(text);
                        l.push_str(&" ".repeat(pad));
                    }
                }
                out.push_str(l.trim_end());
                out.push('\n');
            }
        };
        let total: usize = w.iter().sum::<usize>() + 2 * (n - 1);
        let mut out = String::new();
        line(&self.header, &mut out);
        out.push_str(&"─".repeat(total));
        out.push('\n');
        for (i, r) in self.rows.iter().enumerate() {
            if self.rules.contains(&i) {
                out.push_str(&"─".repeat(total));
                out.push('\n');
            }
            line(r, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(thousands(11_689_512), "11,689,512");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(si(1_814_083_944), "1.814 G");
        assert_eq!(si(118_013_952), "118.0 M");
        assert_eq!(bytes(46_758_048), "44.6 MiB");
    }

    #[test]
    fn table_aligns_multiline_cells() {
        let mut t = TextTable::new(&["a", "b"], &[false, true]);
        t.row(vec!["x\ny".into(), "1".into()]);
        assert_eq!(t.render(), "a  b\n────\nx  1\ny\n");
    }
}
