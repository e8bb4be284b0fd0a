//! `surge-bench instructions`: the hot path's instruction budget (issue 17). Runs this
//! binary's in-memory echo (`engine --part surge-memory` and `--part smoltcp-memory`)
//! under `valgrind --tool=callgrind`, collecting only inside the measured loop, and
//! prints instructions per 64-byte echo (both ends, the pipe included) for surge and
//! smoltcp with each connection count, and their ratio.
//!
//! Instruction counts are repeatable on a noisy machine where timings are not (this VM
//! has no hardware counters); they judge hot-path changes, the timed `engine`
//! benchmark says what they buy.

use std::process::Command;

use anyhow::{Context, bail};

/// Arguments of `surge-bench instructions`.
#[derive(clap::Args, Debug)]
pub struct InstructionsArgs {
    /// Connection counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 100])]
    connections: Vec<usize>,
    /// Requests measured per case (callgrind runs the loop about 50x slower than native).
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
    /// Time limit per case, in valgrind seconds.
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
}

/// One stack's in-memory loop under callgrind.
struct Contender {
    name: &'static str,
    part: &'static str,
    /// callgrind's `--toggle-collect` pattern: the function that runs the measured loop.
    toggle: &'static str,
}

const CONTENDERS: [Contender; 2] = [
    Contender {
        name: "surge",
        part: "surge-memory",
        toggle: "*engine::memory::measured_loop*",
    },
    Contender {
        name: "smoltcp 0.12",
        part: "smoltcp-memory",
        toggle: "*smoltcp_echo::measured_loop*",
    },
];

/// What one run measured.
struct Count {
    requests: u64,
    instructions: u64,
}

impl Count {
    fn per_echo(&self) -> f64 {
        self.instructions as f64 / self.requests.max(1) as f64
    }
}

/// Runs the benchmark and prints the table.
pub fn run(args: InstructionsArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("this binary's path")?;
    let version = Command::new("valgrind")
        .arg("--version")
        .output()
        .context("valgrind is not installed (ci/setup installs it)")?;
    if !version.status.success() {
        bail!("valgrind --version failed");
    }
    println!(
        "surge-bench instructions: 64-byte echo in memory, both ends on one thread, {} requests per case; {}",
        args.requests,
        String::from_utf8_lossy(&version.stdout).trim()
    );
    println!(
        "command per case: valgrind --tool=callgrind --toggle-collect='<loop>' {} engine --part <part> --connections <n> --rounds 1 --warmup 0 --seconds {} --requests {}",
        exe.display(),
        args.seconds,
        args.requests
    );
    println!();
    println!("| conns | surge instructions/echo | smoltcp instructions/echo | surge / smoltcp |");
    println!("| --- | --- | --- | --- |");
    for &conns in &args.connections {
        let mut counts = Vec::new();
        for c in &CONTENDERS {
            let count = measure(&exe, c, conns, &args)
                .with_context(|| format!("{} with {conns} connections", c.name))?;
            eprintln!(
                "  {} {conns} conn: {} instructions for {} echoes",
                c.name, count.instructions, count.requests
            );
            counts.push(count);
        }
        let (surge, smol) = (&counts[0], &counts[1]);
        println!(
            "| {conns} | {:.0} | {:.0} | {:.2}x |",
            surge.per_echo(),
            smol.per_echo(),
            surge.per_echo() / smol.per_echo()
        );
    }
    Ok(())
}

fn measure(
    exe: &std::path::Path,
    c: &Contender,
    conns: usize,
    args: &InstructionsArgs,
) -> anyhow::Result<Count> {
    let out = Command::new("valgrind")
        // Counted on ordinary pages, the same in every run (valgrind would not follow the
        // restart that puts the heap on huge pages anyway).
        .env(surge_stack::runtime::huge_pages::OPT_OUT, "0")
        .arg("--tool=callgrind")
        .arg("--callgrind-out-file=/dev/null")
        .arg(format!("--toggle-collect={}", c.toggle))
        .arg(exe)
        .args(["engine", "--part", c.part, "--rounds", "1"])
        .arg(format!("--connections={conns}"))
        // No warm-up: the measured loop runs it too, and callgrind would count it.
        .arg("--warmup=0")
        .arg(format!("--seconds={}", args.seconds))
        .arg(format!("--requests={}", args.requests))
        .output()
        .context("running valgrind")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("the run failed ({}):\n{stderr}", out.status);
    }
    let instructions = parse_collected(&stderr).context("no 'Collected' line from callgrind")?;
    let requests = parse_requests(&stderr).context("no 'round 0' line from the benchmark")?;
    if requests == 0 {
        bail!("no request was answered:\n{stderr}");
    }
    Ok(Count {
        requests,
        instructions,
    })
}

/// callgrind's "==PID== Collected : N" (instructions collected while toggled on).
fn parse_collected(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.split_once("Collected :").map(|(_, n)| n.trim()))
        .and_then(|n| n.replace(',', "").parse().ok())
}

/// The benchmark's "round 0: ..., N conn: R requests in ..." line.
fn parse_requests(text: &str) -> Option<u64> {
    text.lines()
        .filter(|l| l.trim_start().starts_with("round 0:"))
        .find_map(|l| {
            let (_, rest) = l.split_once(" conn: ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_callgrinds_total_and_the_request_count() {
        let stderr = "==18259== Callgrind, a call-graph generating cache profiler\n\
             machine: 2 CPUs\n\
             \x20 round 0: memory surge<->surge, 100 conn: 20443 requests in 3.00 s -> 6814 req/s, p50 55.3 us\n\
             ==18259== Events    : Ir\n\
             ==18259== Collected : 309527462\n";
        assert_eq!(parse_collected(stderr), Some(309_527_462));
        assert_eq!(parse_requests(stderr), Some(20_443));
        assert_eq!(parse_collected("no such line"), None);
        assert_eq!(parse_requests("  round 1: x, 1 conn: 5 requests"), None);
    }
}
