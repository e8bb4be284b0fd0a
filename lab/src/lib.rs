//! Labs: network namespaces joined by veth pairs, for surge's tests, benchmarks and demo.
//!
//! A lab named `x` is a set of named network namespaces (`surge-x-a`, `surge-x-b` and, in a
//! routed lab, `surge-x-r`), visible to `ip netns`, joined by veth pairs with addresses from
//! 198.18.0.0/15 (RFC 2544) only:
//!
//! | topology | A | router | B |
//! | --- | --- | --- | --- |
//! | `pair` | 198.18.0.1/24 | — | 198.18.0.2/24 |
//! | `routed` | 198.18.1.1/24 via .254 | 198.18.1.254/24, 198.18.2.254/24, forwarding, impairments | 198.18.2.1/24 via .254 |
//!
//! A [`FanLab`] has several client hosts instead of A (`surge-x-c0`, `surge-x-c1`, ... at
//! 198.18.(16+i).1/24), each behind the router, and B as the one server: for a load run from
//! many hosts at once.
//!
//! Veths get the asked number of RX/TX queues and MTU, TX checksum offload off, and IPv6 is
//! off in every namespace. Links, addresses and routes are made over rtnetlink. Checksum
//! offload (`ethtool`), threaded NAPI (`ip netns exec ... sysfs`) and the router's
//! impairments (`iptables`, `tc tbf`, and an NFQUEUE delay queue, because this kernel has no
//! netem) use the standard tools, because rtnetlink cannot set them.
//!
//! Each namespace gets its own hosts file (`/etc/netns/<namespace>/hosts`, which `ip netns
//! exec` puts in place of `/etc/hosts`) naming `a.lab`, `b.lab` and `router.lab`.
//!
//! Needs root, and the tools `ip` (iproute2), `ethtool`, `tc` and, for impairments,
//! `iptables`. Namespaces are bind-mounted under `/run/netns`, so `ip netns exec` works on
//! them.
//!
//! A [`Lab`] made by [`Lab::up`] is removed when dropped, also when a test panics, so every
//! root test can hold one as its guard:
//!
//! ```no_run
//! use surge_lab::{HostId, Lab, LabSpec, Topology};
//!
//! let lab = Lab::up(&LabSpec::unique("doc", Topology::Pair))?;
//! let b = lab.b().addr.to_string();
//! let ping = lab.exec(HostId::A, &["ping", "-c", "1", "-W", "2", &b])?;
//! assert!(ping.status.success());
//! lab.down()?;
//! # Ok::<(), surge_lab::LabError>(())
//! ```

mod delay_queue;
mod device_settings;
mod error;
mod fan;
mod hosts_file;
mod impairment;
mod lab;
mod layout;
mod netlink;
mod netns;
mod owners;
mod spec;
mod status;

pub use delay_queue::{DelaySpec, serve_delay_queue};
pub use error::LabError;
pub use fan::{FanLab, MAX_FAN_CLIENTS, client_netns_name};
pub use lab::{Lab, down_by_name, list_labs, require_root};
pub use layout::{Host, HostId, format_mac, netns_name};
pub use netlink::{InterfaceStatus, XdpAttachment};
pub use netns::{NETNS_RUN_DIR, NetnsGuard, enter_netns, netns_exists, spawn_in_netns};
pub use spec::{
    Impairment, LabSpec, MAX_NAME_LEN, NapiDeferral, Topology, parse_duration, parse_percent,
    rate_bits_per_second, validate_name,
};
pub use status::{HostStatus, LabStatus};
