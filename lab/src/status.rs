//! What exists of a lab, as the kernel reports it, and its human-readable table.

use std::fmt;

use crate::layout::format_mac;
use crate::netlink::InterfaceStatus;
use crate::{HostId, Topology};

/// One host's namespace and what is in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostStatus {
    /// Which host.
    pub id: HostId,
    /// Its namespace.
    pub netns: String,
    /// Its interfaces, `lo` included.
    pub interfaces: Vec<InterfaceStatus>,
    /// Impairments in force: iptables FORWARD rules and tbf qdiscs, one per line.
    pub impairments: Vec<String>,
}

/// A lab's state: one entry per namespace that exists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabStatus {
    /// Lab name.
    pub name: String,
    /// Topology (routed when the router namespace exists).
    pub topology: Topology,
    /// Hosts whose namespace exists.
    pub hosts: Vec<HostStatus>,
}

impl LabStatus {
    /// The interface `ifname` of host `id`, if it exists.
    pub fn interface(&self, id: HostId, ifname: &str) -> Option<&InterfaceStatus> {
        self.hosts
            .iter()
            .find(|h| h.id == id)?
            .interfaces
            .iter()
            .find(|i| i.name == ifname)
    }

    /// Every XDP attachment in the lab, as (namespace, interface, program id).
    pub fn xdp_programs(&self) -> Vec<(String, String, u32)> {
        self.hosts
            .iter()
            .flat_map(|h| {
                h.interfaces.iter().filter_map(|i| {
                    i.xdp
                        .as_ref()
                        .map(|x| (h.netns.clone(), i.name.clone(), x.prog_id))
                })
            })
            .collect()
    }
}

impl fmt::Display for LabStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "lab {} ({})", self.name, self.topology)?;
        writeln!(
            f,
            "{:<4} {:<24} {:<13} {:<5} {:>6} {:>7}  {:<17}  {:<18} XDP",
            "HOST", "NAMESPACE", "INTERFACE", "STATE", "MTU", "RX/TX", "MAC", "IPV4"
        )?;
        for host in &self.hosts {
            for iface in &host.interfaces {
                let addrs = if iface.addrs.is_empty() {
                    "-".to_string()
                } else {
                    iface
                        .addrs
                        .iter()
                        .map(|(a, p)| format!("{a}/{p}"))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let mac = if iface.mac.iter().all(|&b| b == 0) {
                    "-".to_string()
                } else {
                    format_mac(&iface.mac)
                };
                let xdp = iface.xdp.as_ref().map_or("-".to_string(), |x| {
                    format!("{} prog {}", x.mode, x.prog_id)
                });
                writeln!(
                    f,
                    "{:<4} {:<24} {:<13} {:<5} {:>6} {:>7}  {:<17}  {:<18} {}",
                    host.id.to_string(),
                    host.netns,
                    iface.name,
                    if iface.up { "up" } else { "down" },
                    iface.mtu,
                    format!("{}/{}", iface.rx_queues, iface.tx_queues),
                    mac,
                    addrs,
                    xdp
                )?;
            }
            for line in &host.impairments {
                writeln!(f, "{:<4} {:<24} {line}", host.id.to_string(), host.netns)?;
            }
        }
        Ok(())
    }
}
