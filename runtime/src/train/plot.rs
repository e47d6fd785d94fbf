//! Plots of training and test error against iterations in the style of the paper's Figures 4
//! and 6: training error dashed, test error bold, error in percent, iterations in units of 1e4
//! when runs are long. Several runs overlay with one colour each. SVG and PNG (the PNG text is
//! text is laid out and drawn with the Hack font, bundled, so no system font is needed).

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

const SIZE: (u32, u32) = (800, 500);

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
    let scale = if max_it >= 20_000 { 1e4 } else { 1.0 };
    let x_label = if scale > 1.0 {
        "iter. (1e4)"
    } else {
        "iterations"
    };
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
    let mut chart = ChartBuilder::on(root)
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..max_it as f64 / scale, 0f64..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("error (%)")
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    for (k, s) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let train: Vec<(f64, f64)> = s
            .rows
            .iter()
            .filter_map(|r| {
                r.train_error
                    .map(|e| (r.iteration as f64 / scale, e * 100.0))
            })
            .collect();
        let test: Vec<(f64, f64)> = s
            .rows
            .iter()
            .filter_map(|r| {
                r.test_error
                    .or(r.val_error)
                    .map(|e| (r.iteration as f64 / scale, e * 100.0))
            })
            .collect();
        chart
            .draw_series(DashedLineSeries::new(train, 6, 4, colour.stroke_width(1)))
            .map_err(err)?
            .label(format!("{} train", s.label))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 8, y)], colour.stroke_width(1))
            });
        chart
            .draw_series(test.iter().map(|&p| Circle::new(p, 3, colour.filled())))
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(test, colour.stroke_width(3)))
            .map_err(err)?
            .label(format!("{} test", s.label))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
