//! PNG charts people can read: a title, axis names with units, a legend, and text in a real
//! font (DejaVu Sans, bundled in the binary through plotters' `ab_glyph` backend, so no system
//! font library is needed; its licence is `apps/assets/fonts/DejaVu-LICENSE.txt`).
//!
//! - [`write_percentiles`]: latency by percentile for one or more runs, like HdrHistogram's
//!   plotter (x is `1/(1-percentile)` on a log scale, labelled 0%, 90%, 99%, ...);
//! - [`write_over_time`]: a rate over time (requests/s per second of a `.hlog`);
//! - [`write_bars`]: medians with their min–max spread, one bar per contender.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::hgrm::PercentileRow;

/// The bundled font (DejaVu Sans 2.37, Bitstream Vera licence: free to redistribute).
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The family name the charts ask for.
const FAMILY: &str = "sans-serif";
/// Size of every chart, pixels.
const SIZE: (u32, u32) = (1200, 700);
/// Line colours, in legend order (colour-blind safe: Okabe and Ito's palette).
const COLORS: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(0, 0, 0),
];

/// The colour of series `i`.
pub fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// Registers the bundled font once per process.
fn font_ready() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED
        .get_or_init(|| plotters::style::register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    anyhow::ensure!(ok, "the bundled font does not parse");
    Ok(())
}

/// Maps a plotters error into an `anyhow` error naming what was being drawn.
fn drawing<E: std::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> anyhow::Error {
    move |e| anyhow::anyhow!("drawing {what}: {e:?}")
}

/// One run of a percentile chart.
#[derive(Clone, Debug)]
pub struct PercentileRun {
    /// The legend's name of the run.
    pub label: String,
    /// Its percentile distribution (as in `.hgrm`).
    pub rows: Vec<PercentileRow>,
}

/// The unit latencies are shown in: microseconds below 2 ms, else milliseconds.
fn latency_unit(max_ms: f64) -> (&'static str, f64) {
    if max_ms < 2.0 {
        ("µs", 1000.0)
    } else {
        ("ms", 1.0)
    }
}

/// `0%`, `90%`, `99%`, `99.9%`, ... for a decade of `1/(1-p)`; empty between decades.
fn percentile_label(x: f64) -> String {
    let decade = x.log10();
    if (decade - decade.round()).abs() > 1e-6 {
        return String::new();
    }
    let digits = (decade.round() as usize).saturating_sub(2);
    format!("{:.digits$}%", (1.0 - 1.0 / x) * 100.0)
}

/// Writes the latency-by-percentile chart of `runs` to `path` (PNG).
pub fn write_percentiles(path: &Path, title: &str, runs: &[PercentileRun]) -> anyhow::Result<()> {
    font_ready()?;
    anyhow::ensure!(!runs.is_empty(), "no run to plot");
    // x = 1/(1-p), capped at 10^6 (p = 99.9999%); the last row (p = 1) sits at the cap,
    // and the axis ends at the first decade past the most precise percentile of any run.
    let cap = 1e6_f64;
    let x = |p: f64| (1.0 / (1.0 - p)).clamp(1.0, cap);
    let finest = runs
        .iter()
        .flat_map(|r| r.rows.iter().filter(|row| row.percentile < 1.0))
        .map(|row| x(row.percentile))
        .fold(10.0_f64, f64::max);
    let x_max = 10f64.powi(finest.log10().ceil() as i32 + 1).min(cap);
    let max_ms = runs
        .iter()
        .flat_map(|r| &r.rows)
        .map(|row| row.value_ms)
        .fold(0.0_f64, f64::max)
        .max(0.001);
    let (unit, scale) = latency_unit(max_ms);
    let y_max = max_ms * scale * 1.1;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(drawing("the background"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 28))
        .margin(20)
        .margin_right(60)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d((1.0..x_max).log_scale(), 0.0..y_max)
        .map_err(drawing("the axes"))?;
    chart
        .configure_mesh()
        .x_desc("percentile (log scale of 1/(1 - percentile))")
        .y_desc(format!("latency ({unit})"))
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .axis_desc_style((FAMILY, 20))
        .label_style((FAMILY, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(drawing("the grid"))?;
    for (i, run) in runs.iter().enumerate() {
        let points = run
            .rows
            .iter()
            .map(|row| (x(row.percentile).min(x_max), row.value_ms * scale));
        chart
            .draw_series(LineSeries::new(points, color(i).stroke_width(3)))
            .map_err(drawing("a latency line"))?
            .label(run.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 24, y)], color(i).stroke_width(3))
            });
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present()
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

/// Draws the legend box of `chart` at `position`.
fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FAMILY, 18))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(160, 160, 160))
        .draw()
        .map_err(drawing("the legend"))
}

/// Writes the percentile chart of one run (what `surge load --plot` draws).
pub fn write_plot(path: &Path, rows: &[PercentileRow]) -> anyhow::Result<()> {
    let run = PercentileRun {
        label: "request to response".to_owned(),
        rows: rows.to_vec(),
    };
    write_percentiles(path, "Latency by percentile", &[run])
}

/// One line of a chart over time: `(seconds since the start, value)` points.
#[derive(Clone, Debug)]
pub struct TimeSeries {
    /// The legend's name of the line.
    pub label: String,
    /// The points, in time order.
    pub points: Vec<(f64, f64)>,
}

/// `12k`, `1.5M`: a short label for an axis value.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e5 || (a >= 1e3 && v % 1e3 == 0.0) {
        format!("{:.0}k", v / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Writes a chart of `series` over time to `path`: x in seconds, y named by `y_desc`.
pub fn write_over_time(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[TimeSeries],
) -> anyhow::Result<()> {
    font_ready()?;
    anyhow::ensure!(
        series.iter().any(|s| !s.points.is_empty()),
        "no point to plot"
    );
    let all = || series.iter().flat_map(|s| &s.points);
    let x_max = all().map(|p| p.0).fold(1.0_f64, f64::max);
    let y_max = all().map(|p| p.1).fold(0.0_f64, f64::max).max(1.0) * 1.15;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(drawing("the background"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FAMILY, 28))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(drawing("the axes"))?;
    chart
        .configure_mesh()
        .x_desc("time since the start (s)")
        .y_desc(y_desc)
        .y_label_formatter(&|y| short_number(*y))
        .axis_desc_style((FAMILY, 20))
        .label_style((FAMILY, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(drawing("the grid"))?;
    for (i, s) in series.iter().enumerate() {
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color(i).stroke_width(3),
            ))
            .map_err(drawing("a line"))?
            .label(s.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 24, y)], color(i).stroke_width(3))
            });
        chart
            .draw_series(
                s.points
                    .iter()
                    .map(|&p| Circle::new(p, 4, color(i).filled())),
            )
            .map_err(drawing("the points"))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present()
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

/// One bar of a bar chart: a median over rounds and the spread of the rounds.
#[derive(Clone, Debug)]
pub struct Bar {
    /// What the bar measured (`wrk -> nginx`).
    pub label: String,
    /// The median over rounds.
    pub median: f64,
    /// The lowest round.
    pub min: f64,
    /// The highest round.
    pub max: f64,
    /// Drawn in the accent colour (surge's own contenders).
    pub accent: bool,
}

/// Writes a horizontal bar chart of `bars` to `path`: one bar per contender (its median),
/// a whisker from the lowest to the highest round, the median written past the bar's end.
pub fn write_bars(path: &Path, title: &str, x_desc: &str, bars: &[Bar]) -> anyhow::Result<()> {
    font_ready()?;
    anyhow::ensure!(!bars.is_empty(), "no bar to draw");
    let n = bars.len();
    let x_max = bars
        .iter()
        .map(|b| b.max.max(b.median))
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.2;
    let height = (210 + 60 * n as u32).max(360);
    let root = BitMapBackend::new(path, (SIZE.0, height)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing("the background"))?;
    // The legend gets its own strip under the chart, so it never covers a bar.
    let (upper, strip) = root.split_vertically(height - 45);
    // Bar i is centred on y = n - 1 - i (the first bar on top).
    let y_of = |i: usize| (n - 1 - i) as f64;
    let mut chart = ChartBuilder::on(&upper)
        .caption(title, (FAMILY, 26))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(340)
        .build_cartesian_2d(0.0..x_max, -0.6..(n as f64 - 0.4))
        .map_err(drawing("the axes"))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc(x_desc)
        .x_label_formatter(&|x| short_number(*x))
        .axis_desc_style((FAMILY, 20))
        .label_style((FAMILY, 16))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(drawing("the grid"))?;
    let plain = RGBColor(150, 170, 190);
    let accent = color(1);
    let right = Pos::new(HPos::Right, VPos::Center);
    let left = Pos::new(HPos::Left, VPos::Center);
    for (i, bar) in bars.iter().enumerate() {
        let y = y_of(i);
        // The contender's name, left of the axis.
        let (px, py) = chart.backend_coord(&(0.0, y));
        upper
            .draw(&Text::new(
                bar.label.clone(),
                (px - 12, py),
                TextStyle::from((FAMILY, 17).into_font()).pos(right),
            ))
            .map_err(drawing("a label"))?;
        if !bar.median.is_finite() {
            continue;
        }
        let fill = if bar.accent { accent } else { plain };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(0.0, y - 0.3), (bar.median, y + 0.3)],
                fill.filled(),
            )))
            .map_err(drawing("a bar"))?;
        if bar.min.is_finite() && bar.max.is_finite() && bar.max > bar.min {
            let whisker = [(bar.min, y), (bar.max, y)];
            chart
                .draw_series(LineSeries::new(whisker, BLACK.stroke_width(2)))
                .map_err(drawing("a spread"))?;
            for end in [bar.min, bar.max] {
                chart
                    .draw_series(LineSeries::new(
                        [(end, y - 0.12), (end, y + 0.12)],
                        BLACK.stroke_width(2),
                    ))
                    .map_err(drawing("a spread"))?;
            }
        }
        let text_x = if bar.max.is_finite() {
            bar.max.max(bar.median)
        } else {
            bar.median
        };
        chart
            .draw_series(std::iter::once(Text::new(
                format!(" {}", short_number(bar.median)),
                (text_x, y),
                TextStyle::from((FAMILY, 17).into_font()).pos(left),
            )))
            .map_err(drawing("a value"))?;
    }
    // The legend: what the colours and the whisker mean, in one row under the chart.
    let style = TextStyle::from((FAMILY, 17).into_font()).pos(left);
    let mut x = 40;
    let y = 20;
    for (fill, text) in [
        (Some(accent), "surge"),
        (Some(plain), "the tools surge is compared with"),
        (
            None,
            "bar: median over rounds; line: lowest to highest round",
        ),
    ] {
        match fill {
            Some(fill) => strip.draw(&Rectangle::new(
                [(x, y - 8), (x + 22, y + 8)],
                fill.filled(),
            )),
            None => strip.draw(&PathElement::new(
                [(x, y), (x + 22, y)],
                BLACK.stroke_width(2),
            )),
        }
        .map_err(drawing("the legend"))?;
        strip
            .draw(&Text::new(text, (x + 30, y), style.clone()))
            .map_err(drawing("the legend"))?;
        let width = strip
            .estimate_text_size(text, &style)
            .map_or(200, |(w, _)| w as i32);
        x += 30 + width + 40;
    }
    root.present()
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::hgrm::percentile_rows;
    use crate::report::{new_histogram, record};

    fn png_at(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("surge-plot-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join(format!("{name}.png"));
        (dir, path)
    }

    fn assert_png(path: &Path) {
        let bytes = std::fs::read(path).expect("png");
        assert_eq!(bytes.get(..8), Some(&b"\x89PNG\r\n\x1a\n"[..]));
        // A chart with text, lines and a legend is well above a blank image's size.
        assert!(bytes.len() > 20_000, "{} bytes", bytes.len());
    }

    fn rows(base: u64) -> Vec<PercentileRow> {
        let mut h = new_histogram();
        for v in 1..5000 {
            record(
                &mut h,
                base + v % 300 + if v % 1000 == 0 { 4000 } else { 0 },
            );
        }
        percentile_rows(&h)
    }

    #[test]
    fn percentile_chart_of_two_runs() {
        let (dir, path) = png_at("percentiles");
        let runs = [
            PercentileRun {
                label: "surge".into(),
                rows: rows(50),
            },
            PercentileRun {
                label: "kernel".into(),
                rows: rows(120),
            },
        ];
        write_percentiles(&path, "Latency by percentile", &runs).expect("plot");
        assert_png(&path);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn over_time_and_bars() {
        let (dir, path) = png_at("time");
        let series = [TimeSeries {
            label: "run".into(),
            points: (1..=5)
                .map(|s| (f64::from(s), 1000.0 * f64::from(s)))
                .collect(),
        }];
        write_over_time(&path, "Requests per second", "requests/s", &series).expect("plot");
        assert_png(&path);
        let bars = [
            Bar {
                label: "wrk -> nginx".into(),
                median: 40_000.0,
                min: 38_000.0,
                max: 41_000.0,
                accent: false,
            },
            Bar {
                label: "wrk -> surge".into(),
                median: 4_000.0,
                min: 3_000.0,
                max: 5_000.0,
                accent: true,
            },
        ];
        let bars_path = dir.join("bars.png");
        write_bars(&bars_path, "Connections per second", "connections/s", &bars).expect("bars");
        assert_png(&bars_path);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn nothing_to_plot_is_an_error() {
        let (dir, path) = png_at("empty");
        assert!(write_percentiles(&path, "t", &[]).is_err());
        assert!(write_over_time(&path, "t", "y", &[]).is_err());
        assert!(write_bars(&path, "t", "x", &[]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn percentile_labels_at_decades_only() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(1e5), "99.999%");
        assert_eq!(percentile_label(20.0), "");
        assert_eq!(short_number(5000.0), "5k");
        assert_eq!(short_number(1500.0), "1.5k");
        assert_eq!(short_number(45_000.0), "45k");
        assert_eq!(short_number(11_605.0), "11.6k");
        assert_eq!(short_number(297_000.0), "297k");
        assert_eq!(short_number(2_500_000.0), "2.5M");
    }
}
