//! Device settings that rtnetlink 0.24 cannot make, done with the standard tools.
//!
//! - TX checksum offload off: `ethtool -K <dev> tx off` (ethtool settings travel over the
//!   ethtool genetlink family or an ioctl, neither of which rtnetlink speaks);
//! - threaded NAPI: `/sys/class/net/<dev>/threaded`, written through `ip netns exec` because
//!   it remounts `/sys` for the namespace (a thread's `setns` does not change `/sys`).
//!
//! `tc` and `ethtool` are started from a thread inside the namespace, so they inherit it.

use crate::netns::{checked_command_in_netns, command_in_netns, write_sysctl};
use crate::spec::NapiDeferral;
use crate::{Host, LabError};

/// Turns TX checksum offload off, so kernel peers send full checksums (AF_XDP sees raw frames
/// and would otherwise receive partial ones).
pub(crate) fn disable_tx_checksum_offload(host: &Host) -> Result<(), LabError> {
    checked_command_in_netns(&host.netns, &["ethtool", "-K", &host.ifname, "tx", "off"])
}

/// Turns threaded NAPI on for the host's veth (which must be up).
///
/// A veth has NAPI instances only with GRO on (or an XDP program attached); without them the
/// kernel refuses the write with EIO, so GRO is switched on first.
pub(crate) fn enable_threaded_napi(host: &Host) -> Result<(), LabError> {
    checked_command_in_netns(&host.netns, &["ethtool", "-K", &host.ifname, "gro", "on"])?;
    // The interface name is ours ([a-z0-9-] only), so it is safe inside `sh -c`.
    let script = format!("echo 1 > /sys/class/net/{}/threaded", host.ifname);
    checked_command_in_netns(
        &host.netns,
        &["ip", "netns", "exec", &host.netns, "sh", "-c", &script],
    )
}

/// Sets the host's veth NAPI deferral (`napi_defer_hard_irqs`, `gro_flush_timeout`), written
/// through `ip netns exec` like `threaded` above, then read back.
pub(crate) fn set_napi_deferral(host: &Host, deferral: NapiDeferral) -> Result<(), LabError> {
    // The interface name is ours ([a-z0-9-] only), so it is safe inside `sh -c`.
    let dir = format!("/sys/class/net/{}", host.ifname);
    let script = format!(
        "echo {} > {dir}/napi_defer_hard_irqs && echo {} > {dir}/gro_flush_timeout && \
         cat {dir}/napi_defer_hard_irqs {dir}/gro_flush_timeout",
        deferral.hard_irqs, deferral.gro_flush_timeout_ns
    );
    let argv = ["ip", "netns", "exec", &host.netns, "sh", "-c", &script];
    let output = command_in_netns(&host.netns, &argv)?;
    let out = String::from_utf8_lossy(&output.stdout);
    let read: Vec<u64> = out
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    if read != [u64::from(deferral.hard_irqs), deferral.gro_flush_timeout_ns] {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(LabError::Command {
            what: format!("setting NAPI deferral on {} in {}", host.ifname, host.netns),
            detail: format!(
                "{}: wrote {deferral:?}, read back {:?} ({})",
                output.status,
                out.trim(),
                stderr.trim()
            ),
        });
    }
    Ok(())
}

/// Turns IPv4 forwarding on in a namespace.
pub(crate) fn enable_ip_forward(netns: &str) -> Result<(), LabError> {
    write_sysctl(netns, "/proc/sys/net/ipv4/ip_forward", "1")
}

/// Turns IPv6 off in a namespace, so no router/neighbour solicitations reach surge's rings.
/// A kernel without IPv6 has nothing to turn off.
pub(crate) fn disable_ipv6(netns: &str) -> Result<(), LabError> {
    for key in [
        "/proc/sys/net/ipv6/conf/all/disable_ipv6",
        "/proc/sys/net/ipv6/conf/default/disable_ipv6",
    ] {
        match write_sysctl(netns, key, "1") {
            Err(LabError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}
