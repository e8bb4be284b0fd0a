//! Impairments in the router: loss, duplication, reordering, delay, jitter and rate.
//!
//! The issue asked for `tc netem`, but this kernel is built without `sch_netem`
//! (`CONFIG_NET_SCH_NETEM` is not set, and there are no modules to load). What it does have
//! is used instead, on the router only (both directions, as netem on both router
//! interfaces would):
//!
//! - loss: iptables `-m statistic --mode random -j DROP` in FORWARD;
//! - duplication: `-m statistic ... -j TEE --gateway <destination host>` (the duplicate is
//!   not delayed, unlike netem's);
//! - reordering: `-m statistic ... -j ACCEPT` ahead of the delay rule, so that share of
//!   packets skips the delay and overtakes delayed ones — netem's `reorder` semantics;
//! - delay and jitter: `-j NFQUEUE` and a userspace queue holding packet ids (`delay_queue`);
//! - corruption: the same queue, copying packets and handing some back with one byte of
//!   their IP payload inverted (packets that skip the delay to be reordered skip it too);
//! - ECN CE marks: the same queue, setting CE on a share of ECN-capable packets;
//! - rate: a `tbf` qdisc on both router interfaces.

use crate::delay_queue::{DelaySpec, DelayThread, QUEUE_NUM};
use crate::layout::Layout;
use crate::netns::{checked_command_in_netns, command_in_netns};
use crate::spec::rate_bits_per_second;
use crate::{Host, Impairment, LabError};

/// A probability for `-m statistic --probability`.
fn probability(percent: f64) -> String {
    format!("{:.6}", percent / 100.0)
}

/// Runs `iptables -w 5 <args>` in the router's namespace.
fn iptables(netns: &str, args: &[&str]) -> Result<(), LabError> {
    let mut argv = vec!["iptables", "-w", "5"];
    argv.extend_from_slice(args);
    checked_command_in_netns(netns, &argv)
}

/// Adds `-A FORWARD -m statistic --mode random --probability p <rest>` in the router.
fn random_rule(netns: &str, percent: f64, prefix: &[&str], rest: &[&str]) -> Result<(), LabError> {
    let p = probability(percent);
    let mut args = vec!["-A", "FORWARD"];
    args.extend_from_slice(prefix);
    args.extend_from_slice(&["-m", "statistic", "--mode", "random", "--probability", &p]);
    args.extend_from_slice(rest);
    iptables(netns, &args)
}

/// Puts a tbf qdisc limiting the router interface's egress to `rate`.
fn add_rate_limit(host: &Host, rate: &str, mtu: u32) -> Result<(), LabError> {
    let bits = rate_bits_per_second(rate)
        .ok_or_else(|| LabError::InvalidImpairment(format!("rate {rate:?}")))?;
    // Bucket: 10 ms worth of bytes, at least two full frames.
    let burst = (bits / 8 / 100).max(2 * u64::from(mtu) + 28).to_string();
    checked_command_in_netns(
        &host.netns,
        &[
            "tc",
            "qdisc",
            "add",
            "dev",
            &host.ifname,
            "root",
            "tbf",
            "rate",
            rate,
            "burst",
            &burst,
            "latency",
            "50ms",
        ],
    )
}

/// Applies `imp` to the routed lab's router; returns the delay thread if there is a delay.
pub(crate) fn apply(
    layout: &Layout,
    imp: &Impairment,
    mtu: u32,
) -> Result<Option<DelayThread>, LabError> {
    let (Some(ra), Some(rb)) = (&layout.router_a, &layout.router_b) else {
        return Err(LabError::InvalidImpairment(
            "impairments need the routed topology".to_string(),
        ));
    };
    let router = ra.netns.as_str();
    if let Some(rate) = &imp.rate {
        add_rate_limit(ra, rate, mtu)?;
        add_rate_limit(rb, rate, mtu)?;
    }
    if let Some(loss) = imp.loss_percent {
        random_rule(router, loss, &[], &["-j", "DROP"])?;
    }
    if let Some(dup) = imp.duplicate_percent {
        for (from, to) in [(ra, &layout.b), (rb, &layout.a)] {
            let gateway = to.addr.to_string();
            random_rule(
                router,
                dup,
                &["-i", &from.ifname],
                &["-j", "TEE", "--gateway", &gateway],
            )?;
        }
    }
    if imp.delay.is_none() && imp.corrupt_percent.is_none() && imp.ce_mark_percent.is_none() {
        return Ok(None);
    }
    let delay = imp.delay.unwrap_or_default();
    if let Some(reorder) = imp.reorder_percent {
        random_rule(router, reorder, &[], &["-j", "ACCEPT"])?;
    }
    let spec = DelaySpec {
        delay,
        jitter: imp.jitter.unwrap_or_default(),
        corrupt: imp.corrupt_percent.unwrap_or(0.0) / 100.0,
        ce_mark: imp.ce_mark_percent.unwrap_or(0.0) / 100.0,
    };
    // Bind the queue before any packet is sent to it.
    let thread = DelayThread::start(router, spec)?;
    let comment = format!(
        "surge delay {}us jitter {}us corrupt {:.4}% ce-mark {:.4}%",
        spec.delay.as_micros(),
        spec.jitter.as_micros(),
        spec.corrupt * 100.0,
        spec.ce_mark * 100.0
    );
    let queue = QUEUE_NUM.to_string();
    iptables(
        router,
        &[
            "-A",
            "FORWARD",
            "-m",
            "comment",
            "--comment",
            &comment,
            "-j",
            "NFQUEUE",
            "--queue-num",
            &queue,
        ],
    )?;
    Ok(Some(thread))
}

/// The impairments in force in a namespace: FORWARD rules and tbf qdiscs, one per line.
pub(crate) fn describe(netns: &str) -> Vec<String> {
    let mut lines = Vec::new();
    if let Ok(out) = command_in_netns(netns, &["iptables", "-w", "5", "-S", "FORWARD"]) {
        lines.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.starts_with("-A"))
                .map(|l| format!("iptables {l}")),
        );
    }
    if let Ok(out) = command_in_netns(netns, &["tc", "qdisc", "show"]) {
        lines.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains("tbf"))
                .map(|l| format!("tc {}", l.trim())),
        );
    }
    lines
}
