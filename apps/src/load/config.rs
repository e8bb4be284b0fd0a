//! `surge load` options and the checks that reject impossible combinations.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure};
use clap::{Args, ValueEnum};
use surge_lab::parse_duration;

use super::protocol::{Framing, HttpRequest};
use super::url::{parse_url, read_body};
use crate::backend::StackChoice;

/// What a connection does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LoadMode {
    /// Fixed-size request and response on a kept connection (netperf TCP_RR).
    Rr,
    /// HTTP/1.1 GET (or POST with --request-size) on a kept connection.
    Http,
    /// Connect, one fixed-size request and response, close (netperf TCP_CRR).
    Crr,
    /// Bulk data in one direction (iperf-like).
    Stream,
}

impl LoadMode {
    /// The mode's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Http => "http",
            Self::Crr => "crr",
            Self::Stream => "stream",
        }
    }
}

/// When open-loop requests are due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Arrivals {
    /// Evenly spaced.
    Constant,
    /// Exponential gaps (a Poisson process).
    Poisson,
}

/// Which way a stream flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Direction {
    /// We send, the server sinks.
    Up,
    /// The server sends, we sink.
    Down,
}

/// `surge load`: drive a server and report latency histograms.
#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    /// The TCP stack to run on.
    #[arg(long, value_enum, default_value = "kernel")]
    pub stack: StackChoice,
    /// The server as a URL, `http://HOST:PORT/PATH` (host names resolved; implies --mode http).
    #[arg(value_name = "URL")]
    pub url: Option<String>,
    /// The server, ADDR:PORT (instead of a URL).
    #[arg(long)]
    pub target: Option<SocketAddr>,
    /// What each connection does (default: rr; http with a URL).
    #[arg(long, value_enum)]
    pub mode: Option<LoadMode>,
    /// Connections in total (for crr: concurrent transactions).
    #[arg(short = 'c', long, default_value_t = 10)]
    pub connections: usize,
    /// Worker threads (default: one per core, at most one per connection).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// Length of the run, warm-up included (e.g. 10s, 500ms).
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Stop after this many requests in total (the duration still bounds the run).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Open loop: total request rate per second (latency measured from intended send times).
    #[arg(short = 'R', long)]
    pub rate: Option<f64>,
    /// Open loop arrival process.
    #[arg(long, value_enum)]
    pub arrivals: Option<Arrivals>,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Request size in bytes (rr, crr: default 64; http: a POST body of this size).
    #[arg(long)]
    pub request_size: Option<usize>,
    /// Response size in bytes the server sends (rr, crr; default 64).
    #[arg(long)]
    pub response_size: Option<usize>,
    /// HTTP request path.
    #[arg(long)]
    pub path: Option<String>,
    /// HTTP: ask the server to close after each response (a new connection per request).
    #[arg(long)]
    pub close: bool,
    /// HTTP: an extra request header, 'Name: value' (repeatable; replaces Host or User-Agent).
    #[arg(short = 'H', long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// HTTP request method (default: GET, or POST with a body).
    #[arg(long)]
    pub method: Option<String>,
    /// HTTP: send this file as every request's body (with its Content-Length).
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Stream direction.
    #[arg(long, value_enum)]
    pub direction: Option<Direction>,
    /// Stream: each connection carries a seeded stream of this many bytes, checked by
    /// SHA-256 at the receiver, then closes (the run ends when all have).
    #[arg(long, value_name = "BYTES")]
    pub verify_bytes: Option<u64>,
    /// Leading part of the run excluded from the results.
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Open connections evenly over this period instead of all at once.
    #[arg(long, value_parser = parse_duration)]
    pub ramp_up: Option<Duration>,
    /// Give up on a connect after this long.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Give up on a request after this long (counted as a timeout; the connection is reopened).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Write the latency percentile distribution (.hgrm, values in ms) here.
    #[arg(long)]
    pub hgrm: Option<PathBuf>,
    /// Write an interval histogram log (one histogram per second, format 1.3) here.
    #[arg(long)]
    pub hlog: Option<PathBuf>,
    /// Write everything as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Draw the latency percentile spectrum (PNG) here.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Search for the highest open-loop rate whose p99 stays under --p99.
    #[arg(long)]
    pub find_max: bool,
    /// The p99 latency target of --find-max (e.g. 1ms).
    #[arg(long, value_parser = parse_duration)]
    pub p99: Option<Duration>,
    /// At most this many trial runs for --find-max (each lasts --duration).
    #[arg(long, default_value_t = 10)]
    pub max_trials: usize,
    /// No per-second progress lines.
    #[arg(short, long)]
    pub quiet: bool,
    /// Options of `--stack surge`.
    #[command(flatten)]
    pub surge: crate::backend::surge::SurgeArgs,
    /// surge: open connections from each address of FIRST-LAST in turn (e.g.
    /// 198.18.0.10-198.18.0.13; surge answers on all of them), so one client opens
    /// more connections to one server than one address's port range allows.
    #[arg(long, value_parser = parse_source_range)]
    pub source: Option<SourceRange>,
    /// Seed of the Poisson arrival generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The agent contract: this run as one agent of a test run from many hosts.
    #[command(flatten)]
    pub agent: super::agent::AgentArgs,
    /// `--emit-kubernetes`: this load as a Kubernetes Indexed Job instead of a run.
    #[command(flatten)]
    pub kubernetes: super::kubernetes::KubernetesArgs,
}

/// A checked `surge load` configuration.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The server.
    pub target: SocketAddr,
    /// What each connection does.
    pub mode: LoadMode,
    /// How responses are delimited.
    pub framing: Framing,
    /// Connections in total.
    pub connections: usize,
    /// Worker threads.
    pub threads: usize,
    /// Whole run, warm-up included.
    pub duration: Duration,
    /// Excluded leading part.
    pub warmup: Duration,
    /// Connection opening spread.
    pub ramp_up: Duration,
    /// Total request budget.
    pub requests: Option<u64>,
    /// Open-loop rate (requests per second).
    pub rate: Option<f64>,
    /// Open-loop arrivals.
    pub arrivals: Arrivals,
    /// In-flight requests per connection.
    pub pipeline: usize,
    /// Request bytes (body for http).
    pub request_size: usize,
    /// Response bytes (fixed framing).
    pub response_size: usize,
    /// HTTP path.
    pub path: String,
    /// HTTP `Connection: close`.
    pub close: bool,
    /// The rest of an HTTP request: method, Host, headers, body.
    pub http: HttpRequest,
    /// Stream direction.
    pub direction: Direction,
    /// Stream: bytes of the checked seeded stream per connection.
    pub verify_bytes: Option<u64>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Request timeout.
    pub timeout: Duration,
    /// Print progress lines.
    pub progress: bool,
    /// Poisson seed.
    pub seed: u64,
    /// The connection slots this run drives (all of them, or an agent's slice).
    pub slice: ConnectionSlice,
    /// Begin at this wall-clock instant (`--start-at`).
    pub start_at: Option<std::time::SystemTime>,
    /// Record every intended send time.
    pub record_schedule: bool,
    /// This run as an agent of a distributed test.
    pub agent: Option<super::agent::Agent>,
}

/// A contiguous range of global connection slots, `first..first + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionSlice {
    /// Global index of the first slot.
    pub first: usize,
    /// Slots in the range.
    pub count: usize,
}

/// The most connections one run may open.
const MAX_CONNECTIONS: usize = 100_000;

impl LoadArgs {
    /// Checks the options against each other (reading the agent index and count an
    /// orchestrator may have put in the environment); the error is one line.
    pub fn config(&self) -> anyhow::Result<LoadConfig> {
        self.config_in(&|name| std::env::var(name).ok())
    }

    /// [`LoadArgs::config`] with the environment `env`.
    pub fn config_in(&self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<LoadConfig> {
        let url = self.url.as_deref().map(parse_url).transpose()?;
        let mode = match (self.mode, &url) {
            (Some(LoadMode::Http) | None, Some(_)) => LoadMode::Http,
            (Some(other), Some(_)) => {
                bail!("a URL is for --mode http, not --mode {}", other.name())
            }
            (Some(mode), None) => mode,
            (None, None) => LoadMode::Rr,
        };
        let target = match (&url, self.target) {
            (Some(_), Some(_)) => bail!("give the server once: a URL or --target, not both"),
            (Some(url), None) => url.resolve()?,
            (None, Some(target)) => target,
            (None, None) => {
                bail!("give the server: a URL (http://host:port/path) or --target ADDR:PORT")
            }
        };
        ensure!(
            (1..=MAX_CONNECTIONS).contains(&self.connections),
            "--connections must be between 1 and {MAX_CONNECTIONS}"
        );
        let agent = self.agent.resolve(env)?;
        let slice = match &agent {
            Some(agent) => {
                ensure!(
                    self.connections >= agent.count,
                    "--connections ({}) must be at least --agents ({}): each agent drives its \
                     slice of the connections",
                    self.connections,
                    agent.count
                );
                ensure!(
                    !self.find_max,
                    "--find-max does not run as agents (each trial would need all agents)"
                );
                if let Some(requests) = self.requests {
                    ensure!(
                        requests >= agent.count as u64,
                        "--requests ({requests}) must be at least --agents ({})",
                        agent.count
                    );
                }
                let (first, count) =
                    super::agent::slice(self.connections as u64, agent.count, agent.index);
                ConnectionSlice {
                    first: first as usize,
                    count: count as usize,
                }
            }
            None => ConnectionSlice {
                first: 0,
                count: self.connections,
            },
        };
        if let Some(at) = self.agent.start_at {
            super::agent::check_start_at(at, std::time::SystemTime::now(), self.duration)?;
            ensure!(
                !self.find_max,
                "--start-at does not combine with --find-max"
            );
        }
        let threads = self
            .threads
            .unwrap_or_else(|| crate::backend::available_cores().min(slice.count));
        ensure!(threads >= 1, "--threads must be at least 1");
        ensure!(
            threads <= slice.count,
            "--threads ({threads}) must not exceed the connections this run drives ({})",
            slice.count
        );
        ensure!(threads <= 1024, "--threads must be at most 1024");
        ensure!(!self.duration.is_zero(), "--duration must be positive");
        let warmup = self.warmup.unwrap_or_default();
        ensure!(
            warmup < self.duration,
            "--warmup must be shorter than --duration"
        );
        let ramp_up = self.ramp_up.unwrap_or_default();
        ensure!(
            ramp_up < self.duration,
            "--ramp-up must be shorter than --duration"
        );
        ensure!(
            (1..=1024).contains(&self.pipeline),
            "--pipeline must be between 1 and 1024"
        );
        ensure!(!self.timeout.is_zero(), "--timeout must be positive");
        ensure!(
            !self.connect_timeout.is_zero(),
            "--connect-timeout must be positive"
        );
        if self.requests == Some(0) {
            bail!("--requests must be at least 1");
        }
        if let Some(rate) = self.rate {
            ensure!(
                rate.is_finite() && rate > 0.0 && rate <= 10_000_000.0,
                "--rate must be a positive number of requests per second (at most 10M)"
            );
            // Keeps every connection's gap between sends under 1000 s.
            ensure!(
                rate / self.connections as f64 >= 0.001,
                "--rate is too low for {} connections (at least 0.001 per connection per second)",
                self.connections
            );
        }
        if self.arrivals.is_some() && self.rate.is_none() && !self.find_max {
            bail!("--arrivals needs an open loop: give --rate");
        }
        if mode == LoadMode::Stream {
            for (given, name) in [
                (self.rate.is_some(), "--rate"),
                (self.requests.is_some(), "--requests"),
                (self.pipeline != 1, "--pipeline"),
                (self.request_size.is_some(), "--request-size"),
                (self.response_size.is_some(), "--response-size"),
                (self.find_max, "--find-max"),
                (self.hgrm.is_some(), "--hgrm"),
                (self.hlog.is_some(), "--hlog"),
                (self.plot.is_some(), "--plot"),
            ] {
                ensure!(
                    !given,
                    "{name} does not apply to --mode stream (it measures throughput, not latency)"
                );
            }
        } else {
            ensure!(
                self.direction.is_none() && self.verify_bytes.is_none(),
                "--direction and --verify-bytes apply to --mode stream only"
            );
        }
        if mode != LoadMode::Http {
            ensure!(self.path.is_none(), "--path applies to --mode http only");
            ensure!(
                self.headers.is_empty() && self.method.is_none() && self.body_file.is_none(),
                "--header, --method and --body-file apply to --mode http only"
            );
            ensure!(
                !self.close,
                "--close applies to --mode http only (crr closes by itself)"
            );
        } else {
            ensure!(
                self.response_size.is_none(),
                "--response-size does not apply to --mode http (the server's Content-Length says it)"
            );
        }
        if mode == LoadMode::Crr || self.close {
            ensure!(
                self.pipeline == 1,
                "--pipeline must be 1 when every request gets its own connection"
            );
        }
        ensure!(
            self.body_file.is_none() || self.request_size.is_none(),
            "give the body once: --body-file or --request-size, not both"
        );
        let body = match &self.body_file {
            Some(file) => read_body(file)?,
            None => Vec::new(),
        };
        let request_size = self.request_size.unwrap_or(match mode {
            LoadMode::Rr | LoadMode::Crr => 64,
            _ => body.len(),
        });
        let response_size = self.response_size.unwrap_or(64);
        if matches!(mode, LoadMode::Rr | LoadMode::Crr) {
            ensure!(
                (1..=64 << 20).contains(&request_size),
                "--request-size must be between 1 and 64 MiB"
            );
            ensure!(
                (1..=64 << 20).contains(&response_size),
                "--response-size must be between 1 and 64 MiB"
            );
        }
        ensure!(
            request_size <= 64 << 20,
            "--request-size must be at most 64 MiB"
        );
        if self.find_max {
            ensure!(
                self.p99.is_some_and(|p| !p.is_zero()),
                "--find-max needs a positive --p99 target"
            );
            ensure!(
                self.requests.is_none(),
                "--find-max runs timed trials; drop --requests"
            );
            ensure!(
                (1..=50).contains(&self.max_trials),
                "--max-trials must be between 1 and 50"
            );
        } else {
            ensure!(
                self.p99.is_none(),
                "--p99 is the target of --find-max; add --find-max"
            );
        }
        ensure!(
            url.is_none() || self.path.is_none(),
            "the URL gives the path: drop --path"
        );
        let path = match (&url, &self.path) {
            (Some(url), _) => url.path.clone(),
            (None, Some(path)) => path.clone(),
            (None, None) => "/".to_string(),
        };
        ensure!(
            path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic()),
            "--path must start with / and contain no spaces or control characters"
        );
        let http = HttpRequest::new(
            self.method.as_deref(),
            url.as_ref()
                .map_or_else(|| target.to_string(), |u| u.authority.clone()),
            &self.headers,
            match mode {
                LoadMode::Http if body.is_empty() => vec![b'q'; request_size],
                LoadMode::Http => body,
                _ => Vec::new(),
            },
        )?;
        let framing = match mode {
            LoadMode::Http => Framing::Http {
                head: http.method.eq_ignore_ascii_case("HEAD"),
            },
            _ => Framing::Fixed(response_size),
        };
        Ok(LoadConfig {
            target,
            mode,
            framing,
            connections: self.connections,
            threads,
            duration: self.duration,
            warmup,
            ramp_up,
            rate: self.rate,
            arrivals: self.arrivals.unwrap_or(Arrivals::Constant),
            pipeline: self.pipeline,
            request_size,
            response_size: if mode == LoadMode::Http {
                0
            } else {
                response_size
            },
            path,
            close: self.close,
            http,
            direction: self.direction.unwrap_or(Direction::Up),
            verify_bytes: self.verify_bytes,
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            progress: !self.quiet,
            seed: self.seed,
            slice,
            start_at: self.agent.start_at,
            record_schedule: agent.as_ref().is_some_and(|a| a.record_schedule),
            requests: match (&agent, self.requests) {
                (Some(agent), Some(total)) => {
                    Some(super::agent::slice(total, agent.count, agent.index).1)
                }
                (_, requests) => requests,
            },
            agent,
        })
    }
}

/// Most source addresses (the XDP steering program's address map holds 256, the
/// primary address included).
pub const MAX_SOURCES: u32 = 255;

/// An inclusive range of IPv4 source addresses (`--source FIRST-LAST`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceRange {
    first: std::net::Ipv4Addr,
    last: std::net::Ipv4Addr,
}

impl SourceRange {
    /// Every address of the range, in order.
    pub fn addrs(&self) -> Vec<std::net::Ipv4Addr> {
        (self.first.to_bits()..=self.last.to_bits())
            .map(std::net::Ipv4Addr::from_bits)
            .collect()
    }
}

/// Parses `A.B.C.D-A.B.C.E` (or one address) into a [`SourceRange`] of at most
/// [`MAX_SOURCES`] unicast addresses.
pub fn parse_source_range(s: &str) -> Result<SourceRange, String> {
    let bad = |why: &str| format!("--source '{s}': {why}");
    let (first, last) = s.split_once('-').unwrap_or((s, s));
    let first: std::net::Ipv4Addr = first
        .trim()
        .parse()
        .map_err(|_| bad("want FIRST-LAST, e.g. 198.18.0.10-198.18.0.13"))?;
    let last: std::net::Ipv4Addr = last
        .trim()
        .parse()
        .map_err(|_| bad("want FIRST-LAST, e.g. 198.18.0.10-198.18.0.13"))?;
    if last < first {
        return Err(bad("the last address is below the first"));
    }
    for ip in [first, last] {
        if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback() {
            return Err(bad(&format!("{ip} is not a unicast address")));
        }
    }
    if last.to_bits() - first.to_bits() >= MAX_SOURCES {
        return Err(bad(&format!("at most {MAX_SOURCES} addresses")));
    }
    Ok(SourceRange { first, last })
}

#[cfg(test)]
mod source_range_tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn ranges_parse_and_list_their_addresses() {
        let r = parse_source_range("198.18.0.254-198.18.1.1").expect("range");
        assert_eq!(
            r.addrs(),
            [
                Ipv4Addr::new(198, 18, 0, 254),
                Ipv4Addr::new(198, 18, 0, 255),
                Ipv4Addr::new(198, 18, 1, 0),
                Ipv4Addr::new(198, 18, 1, 1)
            ]
        );
        let one = parse_source_range("198.18.0.7").expect("one address");
        assert_eq!(one.addrs(), [Ipv4Addr::new(198, 18, 0, 7)]);
        assert_eq!(
            parse_source_range("198.18.0.1-198.18.0.255")
                .expect("255")
                .addrs()
                .len(),
            255
        );
    }

    #[test]
    fn bad_ranges_are_refused_with_the_reason() {
        for (text, why) in [
            ("198.18.0.9-198.18.0.8", "below the first"),
            ("198.18.0.1-198.18.1.0", "at most 255"),
            ("198.18.0.1-x", "want FIRST-LAST"),
            ("", "want FIRST-LAST"),
            ("0.0.0.0-198.18.0.1", "not a unicast"),
            ("224.0.0.1", "not a unicast"),
        ] {
            let e = parse_source_range(text).expect_err(text);
            assert!(e.contains(why), "{text}: {e}");
        }
    }
}
