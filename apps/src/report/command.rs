//! `surge report plot`: charts from the files `surge load` writes, several runs in one
//! picture — `.hgrm` files as one latency-by-percentile chart, `.hlog` files as one chart of
//! requests per second over time. `surge report merge`: one report from the agents of a
//! test run from many hosts.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use clap::{Args, Subcommand};

use super::hgrm::parse_hgrm;
use super::hlog::read_intervals;
use super::plot::{PercentileRun, TimeSeries, write_over_time, write_percentiles};

/// `surge report`: work with the files `surge load` wrote.
#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ReportCommand,
}

/// The `surge report` subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum ReportCommand {
    /// One chart of several runs: `.hgrm` files (latency by percentile) or `.hlog` files
    /// (requests per second over time).
    Plot(PlotArgs),
    /// One report from the files the agents of one test wrote (agent-I-of-N.json and
    /// .hlog): exact merged percentiles, per-second rate, errors, one row per agent.
    Merge(MergeArgs),
}

/// Arguments of `surge report merge`.
#[derive(Args, Debug, Clone)]
pub struct MergeArgs {
    /// Results directories (or single agent-I-of-N.json files), as the agents wrote them.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Merge what is there when agents are missing (the report says which).
    #[arg(long)]
    pub allow_missing: bool,
    /// Write merged.json, .hgrm, .hlog, -latency.png and -rate.png here (default: the
    /// first input directory).
    #[arg(short, long)]
    pub output_dir: Option<PathBuf>,
    /// Stem of the files written.
    #[arg(long, default_value = "merged")]
    pub name: String,
}

/// Arguments of `surge report plot`.
#[derive(Args, Debug, Clone)]
pub struct PlotArgs {
    /// The runs: all `.hgrm` or all `.hlog`.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The PNG to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// The chart's title (default: says what is drawn).
    #[arg(long)]
    pub title: Option<String>,
    /// Legend names, one per file in order (default: the file names without extension).
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
}

/// Runs `surge report`.
pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    match args.command {
        ReportCommand::Plot(plot) => run_plot(&plot),
        ReportCommand::Merge(merge) => run_merge(&merge),
    }
}

/// Merges the agents' files, prints the report and writes the merged files.
pub fn run_merge(args: &MergeArgs) -> anyhow::Result<()> {
    use super::merge::{merge, read_inputs};
    ensure!(
        !args.name.is_empty() && !args.name.contains('/'),
        "--name must be a file stem, not {:?}",
        args.name
    );
    let inputs = read_inputs(&args.inputs)?;
    let merged = merge(&inputs, args.allow_missing)?;
    let dir = match &args.output_dir {
        Some(dir) => dir.clone(),
        None => args
            .inputs
            .iter()
            .find(|p| p.is_dir())
            .cloned()
            .or_else(|| {
                args.inputs
                    .first()
                    .and_then(|p| p.parent())
                    .map(Path::to_path_buf)
            })
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = |suffix: &str| dir.join(format!("{}{suffix}", args.name));
    print!("{}", super::table::format_table(&merged.report));
    print!("{}", merged.format_agents());
    let write = |p: PathBuf, bytes: &[u8]| {
        std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
    };
    write(path(".json"), merged.to_json()?.as_bytes())?;
    write(
        path(".hgrm"),
        super::hgrm::format_hgrm(&merged.latencies.latency).as_bytes(),
    )?;
    write(
        path(".hlog"),
        &super::hlog::format_hlog(merged.start_time, &merged.intervals)?,
    )?;
    if !merged.latencies.latency.is_empty() {
        super::plot::write_plot(&path("-latency.png"), &merged.report.latency_percentiles)
            .context("drawing the latency chart")?;
        let mut series = vec![TimeSeries {
            label: format!("all {} agents", merged.merged.len()),
            points: rate_points(&merged.intervals),
        }];
        for input in &inputs {
            series.push(TimeSeries {
                label: format!("agent {}", input.record.agent_index),
                points: rate_points(&input.intervals),
            });
        }
        write_over_time(
            &path("-rate.png"),
            &format!("Requests per second, test {}", merged.test_id),
            "answered requests per second",
            &series,
        )
        .context("drawing the rate chart")?;
    }
    println!("Wrote {}.{{json,hgrm,hlog}} and charts", path("").display());
    Ok(())
}

/// Answered requests per second at the end of each interval.
fn rate_points(intervals: &[super::hlog::Interval]) -> Vec<(f64, f64)> {
    intervals
        .iter()
        .map(|i| {
            (
                (i.start + i.length).as_secs_f64(),
                i.histogram.len() as f64 / i.length.as_secs_f64().max(1e-9),
            )
        })
        .collect()
}

/// The kind of file a run is in, by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Hgrm,
    Hlog,
}

fn kind_of(path: &Path) -> anyhow::Result<Kind> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("hgrm") => Ok(Kind::Hgrm),
        Some("hlog") => Ok(Kind::Hlog),
        _ => bail!(
            "{}: expected a .hgrm or .hlog file (as written by surge load --hgrm / --hlog)",
            path.display()
        ),
    }
}

/// Draws the chart `args` asks for.
pub fn run_plot(args: &PlotArgs) -> anyhow::Result<()> {
    let kinds = args
        .files
        .iter()
        .map(|f| kind_of(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let kind = kinds.first().copied().context("no file given")?;
    ensure!(
        kinds.iter().all(|k| *k == kind),
        "mixed .hgrm and .hlog files: one chart draws one kind"
    );
    ensure!(
        args.labels.is_empty() || args.labels.len() == args.files.len(),
        "--labels gives {} names for {} files",
        args.labels.len(),
        args.files.len()
    );
    let label = |i: usize, path: &Path| {
        args.labels.get(i).cloned().unwrap_or_else(|| {
            path.file_stem().map_or_else(
                || path.display().to_string(),
                |s| s.to_string_lossy().into(),
            )
        })
    };
    match kind {
        Kind::Hgrm => {
            let mut runs = Vec::new();
            for (i, path) in args.files.iter().enumerate() {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let rows = parse_hgrm(&text).with_context(|| format!("{}", path.display()))?;
                runs.push(PercentileRun {
                    label: label(i, path),
                    rows,
                });
            }
            let title = args.title.as_deref().unwrap_or("Latency by percentile");
            write_percentiles(&args.output, title, &runs)
        }
        Kind::Hlog => {
            let mut series = Vec::new();
            for (i, path) in args.files.iter().enumerate() {
                let log =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let mut intervals =
                    read_intervals(&log).with_context(|| format!("{}", path.display()))?;
                // The run's tail (the drain after the last answer, a last partial interval)
                // would plot as a dip: empty intervals at the end and intervals shorter than
                // half the longest are left out.
                while intervals.len() > 1 && intervals.last().is_some_and(|v| v.count == 0) {
                    intervals.pop();
                }
                let longest = intervals.iter().map(|v| v.length_s).fold(0.0, f64::max);
                series.push(TimeSeries {
                    label: label(i, path),
                    // Each point at the end of its interval: "requests in the second up to t".
                    points: intervals
                        .iter()
                        .filter(|v| v.length_s >= longest / 2.0)
                        .map(|v| (v.start_s + v.length_s, v.rate()))
                        .collect(),
                });
            }
            let title = args.title.as_deref().unwrap_or("Requests per second");
            write_over_time(&args.output, title, "answered requests per second", &series)
        }
    }
    .with_context(|| format!("drawing {}", args.output.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::hgrm::format_hgrm;
    use crate::report::hlog::{Interval, format_hlog};
    use crate::report::{new_histogram, record};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn plots_hgrm_and_hlog_files_and_refuses_a_mix() {
        let dir = std::env::temp_dir().join(format!("surge-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut hgrms = Vec::new();
        let mut hlogs = Vec::new();
        for (name, base) in [("surge", 40u64), ("kernel", 90)] {
            let mut intervals = Vec::new();
            let mut all = new_histogram();
            for second in 0..4u64 {
                let mut h = new_histogram();
                for v in 0..(500 + second * 100) {
                    record(&mut h, base + v % 200);
                }
                let _ = all.add(&h);
                intervals.push(Interval {
                    start: Duration::from_secs(second),
                    length: Duration::from_secs(1),
                    histogram: h,
                });
            }
            let hgrm = dir.join(format!("{name}.hgrm"));
            std::fs::write(&hgrm, format_hgrm(&all)).expect("hgrm");
            let hlog = dir.join(format!("{name}.hlog"));
            std::fs::write(&hlog, format_hlog(UNIX_EPOCH, &intervals).expect("log")).expect("w");
            hgrms.push(hgrm);
            hlogs.push(hlog);
        }
        let out = dir.join("p.png");
        let args = |files: Vec<PathBuf>| PlotArgs {
            files,
            output: out.clone(),
            title: None,
            labels: Vec::new(),
        };
        run_plot(&args(hgrms.clone())).expect("percentiles");
        assert!(std::fs::metadata(&out).expect("png").len() > 20_000);
        std::fs::remove_file(&out).expect("rm");
        run_plot(&args(hlogs.clone())).expect("over time");
        assert!(std::fs::metadata(&out).expect("png").len() > 20_000);
        let mixed = run_plot(&args(vec![hgrms[0].clone(), hlogs[0].clone()]));
        assert!(mixed.expect_err("mixed").to_string().contains("mixed"));
        let other = run_plot(&args(vec![dir.join("x.txt")]));
        assert!(
            other
                .expect_err("txt")
                .to_string()
                .contains(".hgrm or .hlog")
        );
        let mut labelled = args(hgrms);
        labelled.labels = vec!["one".into()];
        assert!(run_plot(&labelled).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
