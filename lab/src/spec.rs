//! What a lab should look like: its name, topology, queues, MTU and impairments.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::LabError;

/// Longest lab name accepted; namespace names are `surge-<name>-a`.
pub const MAX_NAME_LEN: usize = 32;

/// The shape of a lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topology {
    /// Two hosts, A and B, joined by one veth pair.
    Pair,
    /// A — router — B: two veth pairs, the router forwards and carries the netem impairments.
    Routed,
}

impl FromStr for Topology {
    type Err = LabError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pair" => Ok(Self::Pair),
            "routed" => Ok(Self::Routed),
            other => Err(LabError::UnknownTopology(other.to_string())),
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pair => "pair",
            Self::Routed => "routed",
        })
    }
}

/// Network impairments applied in the router, to both directions (see `impairment.rs`: this
/// kernel has no netem, so they are iptables rules, an NFQUEUE delay queue and a tbf qdisc).
///
/// Only a `Routed` lab can carry them: copy-mode AF_XDP transmit bypasses qdiscs, so
/// impairments on A or B would silently do nothing for surge's traffic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Impairment {
    /// One-way delay added on each router interface.
    pub delay: Option<Duration>,
    /// Jitter around the delay (needs `delay`).
    pub jitter: Option<Duration>,
    /// Percentage of packets dropped, 0..=100.
    pub loss_percent: Option<f64>,
    /// Percentage of packets sent at once, ahead of delayed ones (needs `delay`), 0..=100.
    pub reorder_percent: Option<f64>,
    /// Percentage of packets duplicated, 0..=100.
    pub duplicate_percent: Option<f64>,
    /// Percentage of packets with one byte of their IP payload inverted (at a seeded random
    /// offset), 0..=100.
    pub corrupt_percent: Option<f64>,
    /// Percentage of ECN-capable packets marked CE (congestion experienced), 0..=100.
    pub ce_mark_percent: Option<f64>,
    /// Rate limit per direction, such as `500kbit`, `100mbit` or `1gbit`.
    pub rate: Option<String>,
}

impl Impairment {
    /// Whether no impairment is asked for.
    pub fn is_none(&self) -> bool {
        *self == Self::default()
    }

    /// Checks the values netem would refuse or silently ignore.
    pub fn validate(&self) -> Result<(), LabError> {
        let bad = |msg: String| Err(LabError::InvalidImpairment(msg));
        for (what, value) in [
            ("loss", self.loss_percent),
            ("reorder", self.reorder_percent),
            ("duplicate", self.duplicate_percent),
            ("corrupt", self.corrupt_percent),
            ("ce-mark", self.ce_mark_percent),
        ] {
            if let Some(p) = value {
                if !(0.0..=100.0).contains(&p) {
                    return bad(format!("{what} {p}% is outside 0..=100%"));
                }
            }
        }
        if self.delay.is_none() && self.jitter.is_some() {
            return bad("jitter needs a delay".to_string());
        }
        if self.delay.is_none() && self.reorder_percent.is_some() {
            return bad("reorder needs a delay (netem only reorders delayed packets)".to_string());
        }
        if let Some(rate) = &self.rate {
            if rate_bits_per_second(rate).is_none() {
                return bad(format!(
                    "rate {rate:?} is not a rate such as 500kbit, 100mbit or 1gbit"
                ));
            }
        }
        Ok(())
    }
}

/// Everything `Lab::up` needs to build a lab.
#[derive(Clone, Debug, PartialEq)]
pub struct LabSpec {
    /// Lab name: `[a-z0-9-]`, 1..=32 characters, starting with a letter or digit.
    pub name: String,
    /// The topology.
    pub topology: Topology,
    /// RX and TX queues of every veth (default 1).
    pub queues: u16,
    /// MTU of every veth (default 1500).
    pub mtu: u32,
    /// Netem impairments on the router (routed labs only).
    pub impairment: Impairment,
    /// Turn on threaded NAPI on A's and B's veths (this also turns GRO on for them, because
    /// a veth has NAPI instances only with GRO or XDP).
    pub threaded_napi: bool,
    /// NAPI deferral on A's and B's veths (`napi_defer_hard_irqs`, `gro_flush_timeout`),
    /// the kernel's companion settings to busy polling (`surge serve --busy-poll`).
    pub napi_deferral: Option<NapiDeferral>,
}

/// The kernel's per-device NAPI deferral (Documentation/networking/napi.rst): after a
/// NAPI poll, `hard_irqs` more times the device's interrupt stays off and a timer of
/// `gro_flush_timeout_ns` reschedules the poll instead, so a busy-polling application
/// (`SO_PREFER_BUSY_POLL`) drives the queue without the softirq competing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NapiDeferral {
    /// `napi_defer_hard_irqs`.
    pub hard_irqs: u32,
    /// `gro_flush_timeout`, nanoseconds.
    pub gro_flush_timeout_ns: u64,
}

impl NapiDeferral {
    /// The kernel's documented starting point for busy polling: 2 deferrals, 200 µs.
    pub const BUSY_POLL: NapiDeferral = NapiDeferral {
        hard_irqs: 2,
        gro_flush_timeout_ns: 200_000,
    };
    /// The kernel's defaults: no deferral.
    pub const OFF: NapiDeferral = NapiDeferral {
        hard_irqs: 0,
        gro_flush_timeout_ns: 0,
    };
}

impl std::str::FromStr for NapiDeferral {
    type Err = String;

    /// `IRQS:TIMEOUT_US`, e.g. `2:200`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("'{s}' is not IRQS:TIMEOUT_US, e.g. 2:200");
        let (irqs, timeout) = s.split_once(':').ok_or_else(bad)?;
        let hard_irqs: u32 = irqs.trim().parse().map_err(|_| bad())?;
        let us: u64 = timeout.trim().parse().map_err(|_| bad())?;
        let gro_flush_timeout_ns = us.checked_mul(1000).ok_or_else(bad)?;
        Ok(NapiDeferral {
            hard_irqs,
            gro_flush_timeout_ns,
        })
    }
}

impl LabSpec {
    /// A spec with one queue, MTU 1500, no impairment, no threaded NAPI.
    pub fn new(name: &str, topology: Topology) -> Self {
        Self {
            name: name.to_string(),
            topology,
            queues: 1,
            mtu: 1500,
            impairment: Impairment::default(),
            threaded_napi: false,
            napi_deferral: None,
        }
    }

    /// A spec whose name is `prefix` plus a suffix unique to this process and call,
    /// so parallel tests (threads or processes) never collide.
    pub fn unique(prefix: &str, topology: Topology) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let salt = (nanos ^ (nanos >> 12)) & 0xfff;
        let suffix = format!("{:x}{salt:03x}{n:x}", std::process::id());
        let keep = MAX_NAME_LEN.saturating_sub(suffix.len() + 1);
        let prefix: String = prefix.chars().take(keep).collect();
        Self::new(&format!("{prefix}-{suffix}"), topology)
    }
}

/// Parses a rate such as `500kbit`, `100mbit` or `1gbit` into bits per second.
pub fn rate_bits_per_second(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "bit" => 1e0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => return None,
    };
    let bits = value * scale;
    // tbf takes at most 2^64 bytes/s in theory; 1 tbit/s is far beyond any veth.
    (bits.is_finite() && (8.0..=1e12).contains(&bits)).then_some(bits as u64)
}

/// Checks a lab name: `[a-z0-9-]`, 1..=32 characters, starting with a letter or digit.
pub fn validate_name(name: &str) -> Result<(), LabError> {
    let fail = |reason| {
        Err(LabError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return fail("it is longer than 32 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return fail("only a-z, 0-9 and '-' are allowed");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return fail("it must start and end with a letter or digit");
    }
    Ok(())
}

/// Parses a duration such as `1ms`, `500us`, `2s` or `250ns`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("duration {text:?} needs a unit (ns, us, ms or s)"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("duration {text:?} does not start with a number"))?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        _ => {
            return Err(format!(
                "duration {text:?} has unknown unit {unit:?} (ns, us, ms or s)"
            ));
        }
    };
    let seconds = value * scale;
    if !seconds.is_finite() || seconds > 3600.0 {
        return Err(format!("duration {text:?} is too long (at most 1 hour)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses a percentage such as `1%`, `0.5%` or `1`.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().strip_suffix('%').unwrap_or(text.trim());
    let value: f64 = number
        .parse()
        .map_err(|_| format!("percentage {text:?} is not a number"))?;
    if !(0.0..=100.0).contains(&value) {
        return Err(format!("percentage {text:?} is outside 0..=100"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn napi_deferral_parses_irqs_and_microseconds() {
        assert_eq!("2:200".parse::<NapiDeferral>(), Ok(NapiDeferral::BUSY_POLL));
        assert_eq!("0:0".parse::<NapiDeferral>(), Ok(NapiDeferral::OFF));
        assert_eq!(
            " 10 : 1 ".parse::<NapiDeferral>(),
            Ok(NapiDeferral {
                hard_irqs: 10,
                gro_flush_timeout_ns: 1000
            })
        );
        for bad in [
            "",
            "2",
            "2:",
            ":200",
            "x:1",
            "1:y",
            "-1:5",
            "1:18446744073709552",
        ] {
            let err = bad.parse::<NapiDeferral>().expect_err(bad);
            assert!(err.contains("IRQS:TIMEOUT_US"), "{bad}: {err}");
        }
    }

    #[test]
    fn topology_parses_and_names_unknown() {
        assert_eq!("pair".parse::<Topology>().ok(), Some(Topology::Pair));
        assert_eq!("routed".parse::<Topology>().ok(), Some(Topology::Routed));
        let err = "ring".parse::<Topology>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown topology \"ring\" (expected \"pair\" or \"routed\")")
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("surge").is_ok());
        assert!(validate_name("a-1").is_ok());
        for bad in ["", "Surge", "a_b", "-a", "a-", "a/b", &"x".repeat(33)] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn unique_names_differ_and_are_valid() {
        let a = LabSpec::unique("test-with-a-rather-long-prefix-here", Topology::Pair);
        let b = LabSpec::unique("test-with-a-rather-long-prefix-here", Topology::Pair);
        assert_ne!(a.name, b.name);
        validate_name(&a.name).expect("unique name valid");
        assert!(a.name.len() <= MAX_NAME_LEN);
    }

    #[test]
    fn durations_and_percentages_parse() {
        assert_eq!(parse_duration("1ms"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5ms"), Ok(Duration::from_micros(1500)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("99999999s").is_err());
        assert_eq!(parse_percent("1%"), Ok(1.0));
        assert_eq!(parse_percent("0.5"), Ok(0.5));
        assert!(parse_percent("101%").is_err());
        assert!(parse_percent("x%").is_err());
        assert!(parse_percent("-1").is_err());
    }

    #[test]
    fn impairments_are_checked() {
        assert!(Impairment::default().validate().is_ok());
        let jitter_alone = Impairment {
            jitter: Some(Duration::from_millis(1)),
            ..Impairment::default()
        };
        assert!(jitter_alone.validate().is_err());
        let reorder_alone = Impairment {
            reorder_percent: Some(5.0),
            ..Impairment::default()
        };
        assert!(reorder_alone.validate().is_err());
        let bad_rate = Impairment {
            rate: Some("1g; rm".to_string()),
            ..Impairment::default()
        };
        assert!(bad_rate.validate().is_err());
        let good = Impairment {
            delay: Some(Duration::from_millis(1)),
            reorder_percent: Some(5.0),
            rate: Some("100mbit".to_string()),
            ..Impairment::default()
        };
        assert!(good.validate().is_ok());
        assert_eq!(rate_bits_per_second("1.5gbit"), Some(1_500_000_000));
        assert_eq!(rate_bits_per_second("500kbit"), Some(500_000));
        assert_eq!(rate_bits_per_second("100mbps"), None);
        assert_eq!(rate_bits_per_second("mbit"), None);
    }
}
