//! `FanLab`: one server host and several client hosts, each client in its own namespace and
//! subnet, all joined by a router — for loads run from many hosts at once (one `surge load`
//! agent per client host).
//!
//! | host | namespace | address |
//! | --- | --- | --- |
//! | server | `surge-<lab>-b` | 198.18.2.1/24 via 198.18.2.254 |
//! | router | `surge-<lab>-r` | 198.18.2.254/24 and 198.18.(16+i).254/24, forwarding |
//! | client i | `surge-<lab>-c<i>` | 198.18.(16+i).1/24 via 198.18.(16+i).254 |
//!
//! Like [`Lab`](crate::Lab), a fan lab made by [`FanLab::up`] is removed when dropped (also
//! while a panic unwinds, and on SIGINT/SIGTERM/SIGHUP unless the program handles those).

use std::net::Ipv4Addr;
use std::process::Command;

use crate::device_settings::{disable_ipv6, disable_tx_checksum_offload, enable_ip_forward};
use crate::lab::{register, require_root, unregister};
use crate::layout::{ifname, mac};
use crate::netlink::{block_on, configure_link, create_veth};
use crate::netns::{create_netns, delete_netns, netns_exists};
use crate::spec::validate_name;
use crate::{Host, LabError};

/// The most client hosts of one fan lab.
pub const MAX_FAN_CLIENTS: usize = 64;

/// The namespace of client `index` of fan lab `lab`.
pub fn client_netns_name(lab: &str, index: usize) -> String {
    format!("surge-{lab}-c{index}")
}

/// A running fan lab.
#[derive(Debug)]
pub struct FanLab {
    name: String,
    server: Host,
    router_server: Host,
    clients: Vec<Host>,
    router_clients: Vec<Host>,
    /// Namespaces made, removed on drop.
    owned: Vec<String>,
}

/// One end of a link: namespace, role (interface name suffix), address, gateway.
fn end(lab: &str, netns: String, role: &str, addr: Ipv4Addr, gateway: Option<Ipv4Addr>) -> Host {
    Host {
        netns,
        ifname: ifname(lab, role),
        addr,
        prefix_len: 24,
        mac: mac(lab, role),
        gateway,
        peer_addr: Ipv4Addr::UNSPECIFIED,
        peer_mac: [0; 6],
    }
}

/// Makes `left` and `right` each other's peer.
fn link(mut left: Host, mut right: Host) -> (Host, Host) {
    left.peer_addr = right.addr;
    left.peer_mac = right.mac;
    right.peer_addr = left.addr;
    right.peer_mac = left.mac;
    (left, right)
}

impl FanLab {
    /// Builds a fan lab named `name` with `clients` client hosts (1..=64). On any failure,
    /// removes what it made and returns the error.
    pub fn up(name: &str, clients: usize) -> Result<FanLab, LabError> {
        require_root()?;
        validate_name(name)?;
        if !(1..=MAX_FAN_CLIENTS).contains(&clients) {
            return Err(LabError::Command {
                what: format!("a fan lab with {clients} clients"),
                detail: format!("a fan lab has 1 to {MAX_FAN_CLIENTS} client hosts"),
            });
        }
        let router_ns = crate::netns_name(name, crate::HostId::Router);
        let server_ns = crate::netns_name(name, crate::HostId::B);
        let gateway = Ipv4Addr::new(198, 18, 2, 254);
        let (router_server, server) = link(
            end(name, router_ns.clone(), "rb", gateway, None),
            end(
                name,
                server_ns.clone(),
                "b",
                Ipv4Addr::new(198, 18, 2, 1),
                Some(gateway),
            ),
        );
        let mut client_hosts = Vec::new();
        let mut router_clients = Vec::new();
        for i in 0..clients {
            let subnet = 16 + i as u8;
            let gateway = Ipv4Addr::new(198, 18, subnet, 254);
            let (client, router) = link(
                end(
                    name,
                    client_netns_name(name, i),
                    &format!("c{i}"),
                    Ipv4Addr::new(198, 18, subnet, 1),
                    Some(gateway),
                ),
                end(name, router_ns.clone(), &format!("r{i}"), gateway, None),
            );
            client_hosts.push(client);
            router_clients.push(router);
        }
        let mut namespaces = vec![server_ns, router_ns];
        namespaces.extend((0..clients).map(|i| client_netns_name(name, i)));
        let mut all = namespaces.clone();
        all.push(crate::netns_name(name, crate::HostId::A));
        if let Some(taken) = all.iter().find(|ns| netns_exists(ns)) {
            return Err(LabError::NameInUse {
                lab: name.to_string(),
                netns: taken.clone(),
            });
        }
        let mut lab = FanLab {
            name: name.to_string(),
            server,
            router_server,
            clients: client_hosts,
            router_clients,
            owned: Vec::new(),
        };
        register(&lab.name);
        for netns in namespaces {
            if !create_netns(&netns)? {
                return Err(LabError::NameInUse {
                    lab: name.to_string(),
                    netns,
                });
            }
            lab.owned.push(netns.clone());
            disable_ipv6(&netns)?;
        }
        lab.build_links()?;
        Ok(lab)
    }

    /// Creates the veths, addresses and routes, and turns forwarding on in the router.
    fn build_links(&self) -> Result<(), LabError> {
        let pairs: Vec<(&Host, &Host)> = std::iter::once((&self.router_server, &self.server))
            .chain(self.clients.iter().zip(self.router_clients.iter()))
            .collect();
        let ends: Vec<&Host> = pairs.iter().flat_map(|(l, r)| [*l, *r]).collect();
        {
            let (pairs, ends) = (&pairs, &ends);
            block_on(|| async move {
                for (left, right) in pairs {
                    create_veth(left, right, 1).await?;
                }
                for end in ends {
                    configure_link(end, 1500).await?;
                }
                Ok(())
            })?;
        }
        for end in &ends {
            disable_tx_checksum_offload(end)?;
        }
        enable_ip_forward(&self.router_server.netns)
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server host.
    pub fn server(&self) -> &Host {
        &self.server
    }

    /// The client hosts, in index order.
    pub fn clients(&self) -> &[Host] {
        &self.clients
    }

    /// A `Command` that runs `program` in namespace `netns` (via `ip netns exec`).
    pub fn command_in(netns: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", netns, program]);
        command
    }

    /// Leaves the lab running after this handle is gone (for `surge lab up`); remove it
    /// with [`down_by_name`](crate::down_by_name).
    pub fn keep(mut self) {
        self.owned.clear();
        unregister(&self.name);
    }

    /// Removes the lab now, reporting the first error.
    pub fn down(mut self) -> Result<(), LabError> {
        let owned = std::mem::take(&mut self.owned);
        unregister(&self.name);
        remove_namespaces(&owned)
    }
}

/// Deletes the namespaces (their veths go with them); keeps going after an error.
fn remove_namespaces(namespaces: &[String]) -> Result<(), LabError> {
    let mut first_error = None;
    // Clients first, the router last: each veth dies with the first of its two ends.
    for netns in namespaces.iter().rev() {
        if netns_exists(netns) {
            if let Err(e) = delete_netns(netns) {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

impl Drop for FanLab {
    fn drop(&mut self) {
        if self.owned.is_empty() {
            return;
        }
        let owned = std::mem::take(&mut self.owned);
        unregister(&self.name);
        if let Err(err) = remove_namespaces(&owned) {
            eprintln!("surge-lab: removing fan lab {}: {err}", self.name);
        }
    }
}
