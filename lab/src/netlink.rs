//! The rtnetlink requests the lab makes: veths, MTU, link state, addresses, routes, dumps.
//!
//! rtnetlink is async; a tokio current-thread runtime runs each batch of requests on a
//! thread of its own, so callers never see tokio (and may themselves be inside a runtime).
//! A netlink socket talks to the namespace it was opened in, so each request first opens a
//! socket from inside the target namespace.

use std::fs::File;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{
    InfoData, InfoVeth, LinkAttribute, LinkFlags, LinkMessage, LinkXdp, XdpAttached,
};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::error::{netlink_errno, netlink_reason};
use crate::netns::{enter_netns, netns_path};
use crate::{Host, LabError};

/// Runs the future made by `make` to completion on a fresh thread with its own runtime.
pub(crate) fn block_on<R, F>(make: impl FnOnce() -> F + Send) -> Result<R, LabError>
where
    R: Send,
    F: Future<Output = Result<R, LabError>>,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .map_err(|e| LabError::io("starting the netlink runtime", e))?;
                runtime.block_on(make())
            })
            .join()
            .unwrap_or_else(|_| {
                Err(LabError::Netlink {
                    what: "netlink worker".to_string(),
                    reason: "the thread panicked".to_string(),
                })
            })
    })
}

/// Opens a netlink socket inside `netns` (the socket stays there; the thread comes back).
pub(crate) fn connect(netns: &str) -> Result<Handle, LabError> {
    let guard = enter_netns(netns)?;
    let (connection, handle, _) = rtnetlink::new_connection()
        .map_err(|e| LabError::io(format!("opening a netlink socket in {netns}"), e))?;
    drop(guard);
    tokio::spawn(connection);
    Ok(handle)
}

/// The index of interface `ifname`, or `None` if there is none.
pub(crate) async fn link_index(handle: &Handle, ifname: &str) -> Result<Option<u32>, LabError> {
    let mut links = handle.link().get().match_name(ifname.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(LabError::netlink(format!("looking up {ifname}"), &e)),
    }
}

/// Index of an interface that must exist.
async fn existing_index(handle: &Handle, host: &Host) -> Result<u32, LabError> {
    link_index(handle, &host.ifname)
        .await?
        .ok_or_else(|| LabError::Netlink {
            what: format!("looking up {} in {}", host.ifname, host.netns),
            reason: "no such interface".to_string(),
        })
}

/// Creates the veth pair `left` (in its namespace) — `right` (in its namespace) with
/// `queues` RX and TX queues on both ends and the hosts' MACs.
pub(crate) async fn create_veth(left: &Host, right: &Host, queues: u16) -> Result<(), LabError> {
    let handle = connect(&left.netns)?;
    let right_ns = File::open(netns_path(&right.netns))
        .map_err(|e| LabError::io(format!("opening namespace {}", right.netns), e))?;
    let queues = u32::from(queues);
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(right.ifname.clone())
        .address(right.mac.to_vec())
        .setns_by_fd(right_ns.as_raw_fd())
        .append_extra_attribute(LinkAttribute::NumTxQueues(queues))
        .append_extra_attribute(LinkAttribute::NumRxQueues(queues))
        .build();
    let message = LinkVeth::new(&left.ifname, &right.ifname)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .address(left.mac.to_vec())
        .append_extra_attribute(LinkAttribute::NumTxQueues(queues))
        .append_extra_attribute(LinkAttribute::NumRxQueues(queues))
        .build();
    let result = handle.link().add(message).execute().await;
    drop(right_ns);
    match result {
        Ok(()) => Ok(()),
        // The MTU is set afterwards, so EINVAL here is about the queue count.
        Err(e) if netlink_errno(&e) == Some(libc::EINVAL) => Err(LabError::QueuesRefused {
            queues: u16::try_from(queues).unwrap_or(u16::MAX),
            reason: netlink_reason(&e),
        }),
        Err(e) => Err(LabError::netlink(
            format!(
                "creating veth {} ({}) — {} ({})",
                left.ifname, left.netns, right.ifname, right.netns
            ),
            &e,
        )),
    }
}

/// Sets the MTU of the host's veth and brings it up; brings `lo` up too.
pub(crate) async fn configure_link(host: &Host, mtu: u32) -> Result<(), LabError> {
    let handle = connect(&host.netns)?;
    let index = existing_index(&handle, host).await?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).mtu(mtu).build())
        .execute()
        .await
        .map_err(|e| LabError::MtuRefused {
            mtu,
            ifname: host.ifname.clone(),
            reason: netlink_reason(&e),
        })?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(|e| LabError::netlink(format!("bringing {} up", host.ifname), &e))?;
    let lo = link_index(&handle, "lo")
        .await?
        .ok_or_else(|| LabError::Netlink {
            what: format!("looking up lo in {}", host.netns),
            reason: "no such interface".to_string(),
        })?;
    handle
        .link()
        .set(LinkUnspec::new_with_index(lo).up().build())
        .execute()
        .await
        .map_err(|e| LabError::netlink(format!("bringing lo up in {}", host.netns), &e))?;
    handle
        .address()
        .add(index, IpAddr::V4(host.addr), host.prefix_len)
        .execute()
        .await
        .map_err(|e| {
            LabError::netlink(
                format!(
                    "adding {}/{} to {}",
                    host.addr, host.prefix_len, host.ifname
                ),
                &e,
            )
        })?;
    if let Some(gateway) = host.gateway {
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(index)
            .build();
        handle
            .route()
            .add(route)
            .execute()
            .await
            .map_err(|e| LabError::netlink(format!("adding default route via {gateway}"), &e))?;
    }
    Ok(())
}

/// Deletes interface `ifname` in `netns` if it is there; `Ok(true)` if it was.
pub(crate) async fn delete_link(netns: &str, ifname: &str) -> Result<bool, LabError> {
    let handle = connect(netns)?;
    let Some(index) = link_index(&handle, ifname).await? else {
        return Ok(false);
    };
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(true),
        // The peer's deletion may have taken this end with it.
        Err(e) if netlink_errno(&e) == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(LabError::netlink(
            format!("deleting {ifname} in {netns}"),
            &e,
        )),
    }
}

/// An XDP program attached to an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpAttachment {
    /// How it is attached: `driver`, `generic` (skb), `hardware` or `multiple`.
    pub mode: &'static str,
    /// The kernel's id of the program (`bpftool prog show id N`).
    pub prog_id: u32,
}

/// What the kernel says about one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceStatus {
    /// Interface name.
    pub name: String,
    /// Interface index in its namespace.
    pub index: u32,
    /// MTU.
    pub mtu: u32,
    /// Number of TX queues.
    pub tx_queues: u32,
    /// Number of RX queues.
    pub rx_queues: u32,
    /// Hardware address (empty for `lo`).
    pub mac: Vec<u8>,
    /// Administratively up.
    pub up: bool,
    /// IPv4 addresses with prefix lengths.
    pub addrs: Vec<(Ipv4Addr, u8)>,
    /// The XDP program attached, if any.
    pub xdp: Option<XdpAttachment>,
}

/// The XDP attachment described by a link's `IFLA_XDP` attribute.
fn xdp_attachment(attrs: &[LinkXdp]) -> Option<XdpAttachment> {
    let mut mode = None;
    let mut prog_id = 0;
    for attr in attrs {
        match attr {
            LinkXdp::Attached(XdpAttached::None) => return None,
            LinkXdp::Attached(XdpAttached::Driver) => mode = Some("driver"),
            LinkXdp::Attached(XdpAttached::SocketBuffer) => mode = Some("generic"),
            LinkXdp::Attached(XdpAttached::Hardware) => mode = Some("hardware"),
            LinkXdp::Attached(_) => mode = Some("multiple"),
            LinkXdp::ProgId(id) => prog_id = *id,
            _ => {}
        }
    }
    mode.map(|mode| XdpAttachment { mode, prog_id })
}

/// One interface from a link dump message.
fn interface_status(msg: &LinkMessage) -> InterfaceStatus {
    let mut status = InterfaceStatus {
        name: String::new(),
        index: msg.header.index,
        mtu: 0,
        tx_queues: 0,
        rx_queues: 0,
        mac: Vec::new(),
        up: msg.header.flags.contains(LinkFlags::Up),
        addrs: Vec::new(),
        xdp: None,
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(name) => status.name.clone_from(name),
            LinkAttribute::Mtu(mtu) => status.mtu = *mtu,
            LinkAttribute::NumTxQueues(n) => status.tx_queues = *n,
            LinkAttribute::NumRxQueues(n) => status.rx_queues = *n,
            LinkAttribute::Address(mac) => status.mac.clone_from(mac),
            LinkAttribute::Xdp(xdp) => status.xdp = xdp_attachment(xdp),
            _ => {}
        }
    }
    status
}

/// Every interface of `netns` with its IPv4 addresses.
pub(crate) async fn dump_interfaces(netns: &str) -> Result<Vec<InterfaceStatus>, LabError> {
    let handle = connect(netns)?;
    let links: Vec<LinkMessage> = handle
        .link()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| LabError::netlink(format!("listing interfaces of {netns}"), &e))?;
    let mut interfaces: Vec<InterfaceStatus> = links.iter().map(interface_status).collect();
    let addrs: Vec<_> = handle
        .address()
        .get()
        .execute()
        .try_collect()
        .await
        .map_err(|e| LabError::netlink(format!("listing addresses of {netns}"), &e))?;
    for addr in addrs {
        if addr.header.family != AddressFamily::Inet {
            continue;
        }
        let local = addr.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(IpAddr::V4(ip)) | AddressAttribute::Address(IpAddr::V4(ip)) => {
                Some(*ip)
            }
            _ => None,
        });
        let iface = interfaces.iter_mut().find(|i| i.index == addr.header.index);
        if let (Some(ip), Some(iface)) = (local, iface) {
            if !iface.addrs.iter().any(|(a, _)| *a == ip) {
                iface.addrs.push((ip, addr.header.prefix_len));
            }
        }
    }
    interfaces.sort_by_key(|i| i.index);
    Ok(interfaces)
}
