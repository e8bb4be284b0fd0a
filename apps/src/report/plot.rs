//! The latency percentile spectrum as a PNG, like HdrHistogram's plotter: x is
//! `1/(1-percentile)` on a log scale (labelled 50%, 90%, 99%, ...), y is latency in ms.
//!
//! plotters draws text only with a font backend (`ttf` needs system font libraries,
//! `ab_glyph` a font file), so the axis labels use a 3x5 pixel font defined here.

use std::path::Path;

use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;

use super::hgrm::PercentileRow;

/// Pixels per font dot.
const DOT: i32 = 2;

/// The 3x5 glyph of `c` (one `u8` per row, 3 low bits, left bit first), blank if unknown.
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '%' => [5, 1, 2, 4, 5],
        'm' => [0, 0, 7, 7, 5],
        's' => [0, 3, 6, 1, 6],
        'u' => [0, 0, 5, 5, 7],
        'p' => [0, 7, 5, 7, 4],
        _ => [0; 5],
    }
}

/// Draws `text` with its top-left corner at `(x, y)`.
fn draw_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    text: &str,
    (x, y): (i32, i32),
) -> anyhow::Result<()> {
    for (i, c) in text.chars().enumerate() {
        let left = x + i as i32 * 4 * DOT;
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..3 {
                if bits & (4 >> col) != 0 {
                    let px = left + col * DOT;
                    let py = y + row as i32 * DOT;
                    area.draw(&Rectangle::new(
                        [(px, py), (px + DOT - 1, py + DOT - 1)],
                        BLACK.filled(),
                    ))
                    .map_err(|e| anyhow::anyhow!("drawing text: {e}"))?;
                }
            }
        }
    }
    Ok(())
}

/// Width in pixels of `text` in the pixel font.
fn text_width(text: &str) -> i32 {
    text.chars().count() as i32 * 4 * DOT
}

/// `1.25ms`-style label for a millisecond value.
fn ms_label(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0}us", ms * 1000.0)
    } else if ms < 10.0 {
        format!("{ms:.2}ms")
    } else {
        format!("{ms:.0}ms")
    }
}

/// Writes the percentile spectrum of `rows` to `path` (PNG, 900x520).
pub fn write_plot(path: &Path, rows: &[PercentileRow]) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
    // x = 1/(1-p), capped at 10^6 (p = 99.9999%); the last row (p = 1) sits at the cap.
    let x_max = 1e6_f64;
    let points: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| ((1.0 / (1.0 - r.percentile)).clamp(1.0, x_max), r.value_ms))
        .collect();
    let y_max = points
        .iter()
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(0.001)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .margin_left(80)
        .margin_bottom(40)
        .margin_top(20)
        .margin_right(30)
        .build_cartesian_2d((1.0..x_max).log_scale(), 0.0..y_max)
        .map_err(|e| anyhow::anyhow!("building the chart: {e}"))?;
    let grid = RGBColor(220, 220, 220);
    let mut decade = 1.0;
    let mut labels = Vec::new();
    while decade <= x_max {
        chart
            .draw_series(LineSeries::new([(decade, 0.0), (decade, y_max)], grid))
            .map_err(|e| anyhow::anyhow!("drawing the grid: {e}"))?;
        let percent = (1.0 - 1.0 / decade) * 100.0;
        let label = if decade == 1.0 {
            "0%".to_string()
        } else {
            let digits = (decade.log10() as usize).saturating_sub(2);
            format!("{percent:.digits$}%")
        };
        labels.push((chart.backend_coord(&(decade, 0.0)), label));
        decade *= 10.0;
    }
    for i in 0..=5 {
        let y = y_max * f64::from(i) / 5.0;
        chart
            .draw_series(LineSeries::new([(1.0, y), (x_max, y)], grid))
            .map_err(|e| anyhow::anyhow!("drawing the grid: {e}"))?;
        let (px, py) = chart.backend_coord(&(1.0, y));
        let label = ms_label(y);
        labels.push(((px - text_width(&label) - 8, py - 5), label));
    }
    chart
        .draw_series(LineSeries::new(points, BLUE.stroke_width(2)))
        .map_err(|e| anyhow::anyhow!("drawing the latency line: {e}"))?;
    for ((x, y), label) in &labels {
        let (x, y) = if label.ends_with('%') {
            (x - text_width(label) / 2, y + 8)
        } else {
            (*x, *y)
        };
        draw_text(&root, label, (x, y))?;
    }
    root.present()
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::hgrm::percentile_rows;
    use crate::report::{new_histogram, record};

    #[test]
    fn plot_writes_a_png() {
        let mut h = new_histogram();
        for v in 1..5000 {
            record(&mut h, 50 + v % 300 + if v % 1000 == 0 { 4000 } else { 0 });
        }
        let dir = std::env::temp_dir().join(format!("surge-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("p.png");
        write_plot(&path, &percentile_rows(&h)).expect("plot");
        let bytes = std::fs::read(&path).expect("png");
        assert_eq!(bytes.get(..8), Some(&b"\x89PNG\r\n\x1a\n"[..]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
