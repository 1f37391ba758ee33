//! `flashconv bench --plot OUT.png`: tokens/s (end to end) and mixer seconds (mixer
//! only) against the sequence length, one line per method, log-log, as a PNG.

use flashconv::bench::{BenchReport, BenchResult};
use flashconv::{Error, Result};
use plotters::prelude::*;
use std::path::Path;

/// Fonts tried, in order (Debian's fonts-dejavu-core and fonts-liberation2).
const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Registers the first font found as "sans-serif" (plotters keeps it for the process).
fn register_font() -> Result<()> {
    let bytes = FONTS
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or_else(|| {
            Error::input(format!(
                "--plot needs a TrueType font for its labels and found none of {}; \
             install one (apt-get install fonts-dejavu-core)",
                FONTS.join(", ")
            ))
        })?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes.leak())
        .map_err(|_| Error::input("--plot: the font file could not be parsed"))
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::input(format!("drawing {}: {e}", path.display()))
}

/// What a panel plots of a result.
type Value = fn(&BenchResult) -> f64;
/// A panel: the results' mode, the axis label, the value.
type Panel = (&'static str, &'static str, Value);

fn tokens_per_s(r: &BenchResult) -> f64 {
    r.tokens_per_s
}

fn seconds(r: &BenchResult) -> f64 {
    r.seconds
}

/// Draws the report's end-to-end tokens/s and mixer seconds against L into `path`
/// (a panel per mode present in the report).
pub fn draw(report: &BenchReport, path: &Path) -> Result<()> {
    register_font()?;
    let panels: Vec<Panel> = [
        ("end_to_end", "tokens/s, end to end", tokens_per_s as Value),
        ("mixer", "mixer seconds (whole sequence)", seconds),
    ]
    .into_iter()
    .filter(|(mode, _, _)| report.results.iter().any(|r| r.mode == *mode))
    .collect();
    if panels.is_empty() {
        return Err(Error::input("--plot: the benchmark produced no results"));
    }
    let width = 640 * panels.len() as u32;
    let root = BitMapBackend::new(path, (width, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
    let title = format!(
        "flashconv bench, M={} D={}, {} ({})",
        report.config.layers, report.config.dim, report.device.adapter, report.device.backend
    );
    let root = root
        .titled(&title, ("sans-serif", 18))
        .map_err(|e| plot_error(path, e))?;
    for (area, (mode, label, value)) in root.split_evenly((1, panels.len())).iter().zip(panels) {
        draw_panel(report, area, mode, label, value).map_err(|e| plot_error(path, e))?;
    }
    root.present().map_err(|e| plot_error(path, e))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn draw_panel(
    report: &BenchReport,
    area: &Area<'_>,
    mode: &str,
    label: &str,
    value: Value,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let rows: Vec<&BenchResult> = report.results.iter().filter(|r| r.mode == mode).collect();
    // Both axes logarithmic, drawn as log2 L and log10 value on linear axes so that
    // every length gets a label and short value ranges still get ticks.
    let x = |r: &BenchResult| (r.len as f64).log2();
    let y = |r: &BenchResult| value(r).max(1e-12).log10();
    let range = |f: &dyn Fn(&BenchResult) -> f64| {
        rows.iter()
            .fold((f64::MAX, f64::MIN), |(a, b), r| (a.min(f(r)), b.max(f(r))))
    };
    let ((x0, x1), (y0, y1)) = (range(&x), range(&y));
    let mut chart = ChartBuilder::on(area)
        .margin(12)
        .caption(label, ("sans-serif", 16))
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(x0 - 0.3..x1 + 0.3, y0 - 0.15..y1 + 0.15)?;
    chart
        .configure_mesh()
        .x_desc("sequence length L (log scale)")
        .y_desc(format!("{label} (log scale)"))
        .x_labels(((x1 - x0).round() as usize + 1) * 4)
        .y_labels(8)
        .x_label_formatter(&|v| {
            // Label whole powers of two only.
            if (v - v.round()).abs() < 1e-6 {
                format!("{}", 2f64.powf(v.round()))
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| short(10f64.powf(*v)))
        .label_style(("sans-serif", 12))
        .draw()?;
    let mut methods: Vec<(String, String)> = Vec::new();
    for r in &rows {
        let key = (r.method.clone(), r.weights.clone());
        if !methods.contains(&key) {
            methods.push(key);
        }
    }
    for (i, (method, weights)) in methods.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| &r.method == method && &r.weights == weights)
            .map(|r| (x(r), y(r)))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let name = if weights == "f32" {
            method.clone()
        } else {
            format!("{method} ({weights})")
        };
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        chart.draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// A tick label with about three significant digits.
fn short(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}
