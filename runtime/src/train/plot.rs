//! Plots of training and test error against iterations in the style of the paper's Figures 4
//! and 6: training error dashed, test error bold, validation error dotted, error in percent;
//! below it the training loss; iterations in units of 1e4 when runs are long, with ticks at
//! whole iterations. Several runs overlay with one colour each; the legend stands to the right
//! of both panels, outside the data. SVG and PNG (the text is laid out and drawn with the Hack
//! font, bundled, so no system font is needed).

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;

use super::metrics::Row;

/// One run to draw: a label and its rows.
pub struct Series<'a> {
    pub label: &'a str,
    pub rows: &'a [Row],
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
];

const SIZE: (u32, u32) = (900, 600);

/// The width of the legend column, right of the panels.
const LEGEND_WIDTH: u32 = 200;

/// The unit of the x axis for runs of up to `max_it` iterations: 1, or 1e4 for long runs.
fn x_unit(max_it: u64) -> f64 {
    if max_it >= 20_000 {
        1e4
    } else {
        1.0
    }
}

/// A tick label: the iteration count in `unit`s, without trailing zeros (`15`, `0.5`; never
/// `10.0`). The axis counts whole iterations, so its ticks lie on whole iterations.
pub fn x_label(it: u64, unit: f64) -> String {
    if unit == 1.0 {
        return it.to_string();
    }
    number(it as f64 / unit)
}

/// `v` without trailing zeros: `10`, `2.5` (the y axes' labels).
fn number(v: f64) -> String {
    let t = format!("{v:.4}");
    let t = t.trim_end_matches('0').trim_end_matches('.');
    if t == "-0" {
        "0".into()
    } else {
        t.into()
    }
}

fn font() -> Result<(), String> {
    static FONT: OnceLock<bool> = OnceLock::new();
    let ok = *FONT.get_or_init(|| {
        plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::HACK_REGULAR,
        )
        .is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err("cannot load the bundled font".into())
    }
}

/// Draw `series` to `base.svg` and `base.png` (`base` without extension), or to the one file
/// `base` when it ends in `.svg` or `.png`.
pub fn plot(series: &[Series], base: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let ext = base.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mut written = Vec::new();
    // Text layout needs font metrics for SVG too.
    font()?;
    if ext == "svg" || ext.is_empty() {
        let p = if ext.is_empty() {
            base.with_extension("svg")
        } else {
            base.to_path_buf()
        };
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            draw(&root, series)?;
        }
        super::write_atomic(&p, svg.as_bytes()).map_err(|e| format!("`{}`: {e}", p.display()))?;
        written.push(p);
    }
    if ext == "png" || ext.is_empty() {
        let p = if ext.is_empty() {
            base.with_extension("png")
        } else {
            base.to_path_buf()
        };
        let mut buf = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, SIZE).into_drawing_area();
            draw(&root, series)?;
        }
        let img = image::RgbImage::from_raw(SIZE.0, SIZE.1, buf)
            .ok_or_else(|| "the bitmap has the wrong size".to_string())?;
        let mut bytes = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| e.to_string())?;
        super::write_atomic(&p, &bytes).map_err(|e| format!("`{}`: {e}", p.display()))?;
        written.push(p);
    }
    if written.is_empty() {
        return Err(format!(
            "`{}`: write a file ending in .svg or .png, or a name without extension for both",
            base.display()
        ));
    }
    Ok(written)
}

/// One entry of the legend: its text, colour, stroke width and dash (`None`: solid).
struct Entry {
    text: String,
    colour: RGBColor,
    width: u32,
    dash: Option<(i32, i32)>,
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    series: &[Series],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let max_it = series
        .iter()
        .flat_map(|s| s.rows.iter().map(|r| r.iteration))
        .max()
        .unwrap_or(1)
        .max(1);
    let unit = x_unit(max_it);
    let x_desc = if unit > 1.0 {
        "iter. (1e4)"
    } else {
        "iterations"
    };
    // Whole iterations on the axis: its ticks are whole numbers of iterations.
    let x_range = || 0u64..max_it;
    let tick_label = |v: &u64| x_label(*v, unit);
    let x_of = |r: &Row| r.iteration;
    let max_err = series
        .iter()
        .flat_map(|s| {
            s.rows
                .iter()
                .flat_map(|r| [r.train_error, r.test_error, r.val_error])
        })
        .flatten()
        .fold(0.0f64, f64::max);
    let top = ((max_err * 100.0 * 1.1 / 5.0).ceil() * 5.0).clamp(5.0, 100.0);
    let max_loss = series
        .iter()
        .flat_map(|s| s.rows.iter().filter_map(|r| r.train_loss))
        .filter(|l| l.is_finite())
        .fold(None, |m: Option<f64>, l| Some(m.map_or(l, |m| m.max(l))));

    let (panels, legend_area) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    let (error_area, loss_area) = match max_loss {
        Some(_) => {
            let (a, b) = panels.split_vertically(SIZE.1 * 62 / 100);
            (a, Some(b))
        }
        None => (panels, None),
    };
    let mut legend: Vec<Entry> = Vec::new();

    let mut chart = ChartBuilder::on(&error_area)
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(x_range(), 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("error (%)")
        .x_label_formatter(&tick_label)
        .y_label_formatter(&|v| number(*v))
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    for (k, s) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let curve = |pick: fn(&Row) -> Option<f64>| -> Vec<(u64, f64)> {
            s.rows
                .iter()
                .filter_map(|r| pick(r).map(|e| (x_of(r), e * 100.0)))
                .collect()
        };
        let train = curve(|r| r.train_error);
        let test = curve(|r| r.test_error);
        let val = curve(|r| r.val_error);
        if !train.is_empty() {
            chart
                .draw_series(DashedLineSeries::new(train, 6, 4, colour.stroke_width(1)))
                .map_err(err)?;
            legend.push(Entry {
                text: format!("{} train", s.label),
                colour,
                width: 1,
                dash: Some((6, 4)),
            });
        }
        if !test.is_empty() {
            chart
                .draw_series(test.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(test, colour.stroke_width(3)))
                .map_err(err)?;
            legend.push(Entry {
                text: format!("{} test", s.label),
                colour,
                width: 3,
                dash: None,
            });
        }
        if !val.is_empty() {
            chart
                .draw_series(
                    val.iter()
                        .map(|&p| TriangleMarker::new(p, 4, colour.filled())),
                )
                .map_err(err)?;
            chart
                .draw_series(DashedLineSeries::new(val, 2, 3, colour.stroke_width(2)))
                .map_err(err)?;
            legend.push(Entry {
                text: format!("{} validation", s.label),
                colour,
                width: 2,
                dash: Some((2, 3)),
            });
        }
    }

    if let (Some(area), Some(max_loss)) = (loss_area, max_loss) {
        let top = (max_loss * 1.1).max(1e-3);
        let mut chart = ChartBuilder::on(&area)
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(x_range(), 0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("training loss")
            .x_label_formatter(&tick_label)
            .y_label_formatter(&|v| number(*v))
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        for (k, s) in series.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            let loss: Vec<(u64, f64)> = s
                .rows
                .iter()
                .filter_map(|r| r.train_loss.filter(|l| l.is_finite()).map(|l| (x_of(r), l)))
                .collect();
            if loss.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(loss, colour.stroke_width(1)))
                .map_err(err)?;
            legend.push(Entry {
                text: format!("{} loss", s.label),
                colour,
                width: 1,
                dash: None,
            });
        }
    }

    // The legend, in its own column right of the panels.
    let font = ("sans-serif", 13).into_font().color(&BLACK);
    for (i, e) in legend.iter().enumerate() {
        let y = 24 + 20 * i as i32;
        let style = e.colour.stroke_width(e.width);
        let (x0, x1) = (8, 36);
        match e.dash {
            None => {
                legend_area
                    .draw(&PathElement::new(vec![(x0, y), (x1, y)], style))
                    .map_err(err)?;
            }
            Some((on, off)) => {
                let mut x = x0;
                while x < x1 {
                    let end = (x + on).min(x1);
                    legend_area
                        .draw(&PathElement::new(vec![(x, y), (end, y)], style))
                        .map_err(err)?;
                    x += on + off;
                }
            }
        }
        legend_area
            .draw(&Text::new(e.text.clone(), (44, y - 7), font.clone()))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_whole_iterations_without_trailing_zeros() {
        assert_eq!(x_unit(19_999), 1.0);
        assert_eq!(x_unit(64_000), 1e4);
        assert_eq!(x_label(10, 1.0), "10");
        assert_eq!(x_label(5_000, 1e4), "0.5");
        assert_eq!(x_label(20_000, 1e4), "2");
        assert_eq!(x_label(32_500, 1e4), "3.25");
        assert_eq!(number(100.0), "100");
        assert_eq!(number(2.5), "2.5");
    }
}
