//! `surge-bench instructions`: the hot path's instruction budget (issue 17). Runs this
//! binary's in-memory echo (`engine --part surge-memory` and `--part smoltcp-memory`)
//! under `valgrind --tool=callgrind`, collecting only inside the measured loop, and
//! prints instructions per 64-byte echo (both ends, the pipe included) for surge and
//! smoltcp with each connection count, and their ratio.
//!
//! Instruction counts are repeatable on a noisy machine where timings are not (this VM
//! has no hardware counters); they judge hot-path changes, the timed `engine`
//! benchmark says what they buy. Two more columns say why a count does not turn into
//! time one for one: callgrind's simulated L1 instruction-cache misses per echo (the
//! cache geometry is the host's, as callgrind reads it from `cpuid`) and the hot code's
//! size, the 64-byte lines holding an instruction run on at least every other echo. An
//! echo whose hot code outgrows the L1i cache misses on every echo, however few
//! instructions it runs.

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
    /// Simulated L1 instruction-cache misses.
    i1_misses: u64,
    /// 64-byte code lines holding an instruction run at least `requests / 2` times.
    hot_lines: usize,
}

impl Count {
    fn per_echo(&self, n: u64) -> f64 {
        n as f64 / self.requests.max(1) as f64
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
    println!(
        "| conns | surge instructions/echo | smoltcp instructions/echo | surge / smoltcp | surge L1i misses/echo | smoltcp L1i misses/echo | surge hot code KiB | smoltcp hot code KiB |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for &conns in &args.connections {
        let mut counts = Vec::new();
        for c in &CONTENDERS {
            let count = measure(&exe, c, conns, &args)
                .with_context(|| format!("{} with {conns} connections", c.name))?;
            eprintln!(
                "  {} {conns} conn: {} instructions, {} L1i misses, {} hot code lines for {} echoes",
                c.name, count.instructions, count.i1_misses, count.hot_lines, count.requests
            );
            counts.push(count);
        }
        let (surge, smol) = (&counts[0], &counts[1]);
        println!(
            "| {conns} | {:.0} | {:.0} | {:.2}x | {:.0} | {:.0} | {:.1} | {:.1} |",
            surge.per_echo(surge.instructions),
            smol.per_echo(smol.instructions),
            surge.per_echo(surge.instructions) / smol.per_echo(smol.instructions),
            surge.per_echo(surge.i1_misses),
            smol.per_echo(smol.i1_misses),
            surge.hot_lines as f64 * 64.0 / 1024.0,
            smol.hot_lines as f64 * 64.0 / 1024.0,
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
    let profile = std::env::temp_dir().join(format!(
        "surge-bench-instructions-{}-{}-{conns}.out",
        std::process::id(),
        c.part
    ));
    let out = Command::new("valgrind")
        // Counted on ordinary pages, the same in every run (valgrind would not follow the
        // restart that puts the heap on huge pages anyway).
        .env(surge_stack::runtime::huge_pages::OPT_OUT, "0")
        .arg("--tool=callgrind")
        .arg("--cache-sim=yes")
        .arg("--dump-instr=yes")
        .arg(format!("--callgrind-out-file={}", profile.display()))
        .arg(format!("--toggle-collect={}", c.toggle))
        .arg(exe)
        .args(["engine", "--part", c.part, "--rounds", "1"])
        .arg(format!("--connections={conns}"))
        // No warm-up: the measured loop runs it too, and callgrind would count it.
        .arg("--warmup=0")
        .arg(format!("--seconds={}", args.seconds))
        .arg(format!("--requests={}", args.requests))
        .output();
    // The profile is tens of megabytes: read, then removed whatever happened.
    let text = std::fs::read_to_string(&profile);
    let _ = std::fs::remove_file(&profile);
    let out = out.context("running valgrind")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("the run failed ({}):\n{stderr}", out.status);
    }
    let instructions =
        parse_collected(&stderr, "Ir").context("no 'Collected' line from callgrind")?;
    let i1_misses =
        parse_collected(&stderr, "I1mr").context("no I1mr in callgrind's 'Collected' line")?;
    let requests = parse_requests(&stderr).context("no 'round 0' line from the benchmark")?;
    if requests == 0 {
        bail!("no request was answered:\n{stderr}");
    }
    let text = text.context("reading callgrind's profile")?;
    let hot_lines = hot_code_lines(&text, requests.div_ceil(2))
        .context("callgrind's profile has no per-instruction costs")?;
    Ok(Count {
        requests,
        instructions,
        i1_misses,
        hot_lines,
    })
}

/// One event of callgrind's "==PID== Collected : N N ..." line, named by its
/// "==PID== Events : Ir I1mr ..." line.
fn parse_collected(text: &str, event: &str) -> Option<u64> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.split_once(key).map(|(_, rest)| rest.trim().to_owned()))
    };
    let events = field("Events    :").or_else(|| field("Events :"))?;
    let index = events.split_whitespace().position(|e| e == event)?;
    let counts = field("Collected :")?;
    counts
        .split_whitespace()
        .nth(index)
        .and_then(|n| n.replace(',', "").parse().ok())
}

/// The distinct 64-byte code lines holding an instruction executed at least `min` times,
/// from a callgrind profile written with `--dump-instr=yes` (positions `instr line`).
///
/// Cost lines start with the instruction's address: absolute (`0x...`), relative to the
/// previous position (`+N`, `-N`) or the same (`*`); the first event is `Ir`. The cost
/// line after a `calls=` line is the call's inclusive cost, not the instruction's own, so
/// it moves the position but adds nothing. Returns `None` when no cost line was read.
fn hot_code_lines(profile: &str, min: u64) -> Option<usize> {
    let mut executed: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    let mut position = 0u64;
    let mut call_cost_next = false;
    let mut any = false;
    for line in profile.lines() {
        if line.starts_with("calls=") {
            call_cost_next = true;
            continue;
        }
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        let address = if first == "*" {
            position
        } else if let Some(hex) = first.strip_prefix("0x") {
            let Ok(a) = u64::from_str_radix(hex, 16) else {
                continue;
            };
            a
        } else if let Some(delta) = first.strip_prefix('+') {
            let Some(d) = parse_number(delta) else {
                continue;
            };
            position.wrapping_add(d)
        } else if let Some(delta) = first.strip_prefix('-') {
            let Some(d) = parse_number(delta) else {
                continue;
            };
            position.wrapping_sub(d)
        } else {
            // Headers, `fn=`/`fl=` names and the like.
            continue;
        };
        position = address;
        any = true;
        if std::mem::take(&mut call_cost_next) {
            continue;
        }
        // The line position, then Ir.
        let ir = fields
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        *executed.entry(address).or_default() += ir;
    }
    any.then(|| {
        executed
            .iter()
            .filter(|&(_, &n)| n >= min)
            .map(|(a, _)| a >> 6)
            .collect::<std::collections::HashSet<_>>()
            .len()
    })
}

/// A decimal or `0x` hexadecimal number.
fn parse_number(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
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
             ==18259== Events    : Ir Dr Dw I1mr D1mr\n\
             ==18259== Collected : 309527462 1 2 4411 5\n";
        assert_eq!(parse_collected(stderr, "Ir"), Some(309_527_462));
        assert_eq!(parse_collected(stderr, "I1mr"), Some(4_411));
        assert_eq!(parse_collected(stderr, "Bcm"), None);
        assert_eq!(parse_requests(stderr), Some(20_443));
        assert_eq!(parse_collected("no such line", "Ir"), None);
        assert_eq!(parse_requests("  round 1: x, 1 conn: 5 requests"), None);
    }

    #[test]
    fn counts_the_lines_of_instructions_run_often_enough() {
        // 0x1000 and 0x1004 share a line; 0x1040 is the next; 0x2000 runs too rarely;
        // the cost after `calls=` (the callee's inclusive 9000 at 0x1080) is not the
        // instruction's own; `*` repeats the position, `+`/`-` move it.
        let profile = "positions: instr line\n\
             events: Ir\n\
             fn=(1) f\n\
             0x1000 10 100\n\
             +4 11 100\n\
             +0x3c 12 60\n\
             * 12 40\n\
             0x2000 20 5\n\
             -0xf80 13 1\n\
             calls=1 0x3000 30\n\
             * 13 9000\n\
             fn=(2) g\n";
        assert_eq!(hot_code_lines(profile, 100), Some(2));
        assert_eq!(hot_code_lines(profile, 101), Some(0));
        assert_eq!(hot_code_lines(profile, 1), Some(4));
        assert_eq!(hot_code_lines("events: Ir\n", 1), None);
    }
}
