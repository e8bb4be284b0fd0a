//! The lab's error type: one line naming the problem.

use std::fmt;

/// Everything that can go wrong while building, inspecting or removing a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The caller is not root; namespaces and veths need CAP_SYS_ADMIN and CAP_NET_ADMIN.
    #[error("surge lab needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN): run it as root or with sudo")]
    NotRoot,
    /// The lab name breaks the naming rules.
    #[error("invalid lab name {name:?}: {reason}")]
    InvalidName {
        /// The name that was given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A topology name that is neither `pair` nor `routed`.
    #[error("unknown topology {0:?} (expected \"pair\" or \"routed\")")]
    UnknownTopology(String),
    /// A lab (or a namespace) with this name already exists.
    #[error(
        "lab {lab:?} already exists (namespace {netns} is present); remove it with `surge lab down --name {lab}`"
    )]
    NameInUse {
        /// The lab name.
        lab: String,
        /// The namespace that is already there.
        netns: String,
    },
    /// No lab with this name exists.
    #[error("no lab named {0:?}")]
    NotFound(String),
    /// The host does not exist in this lab's topology (the router of a `pair` lab).
    #[error("lab {lab:?} has no host {host} (its topology is {topology})")]
    NoSuchHost {
        /// The lab name.
        lab: String,
        /// The host asked for.
        host: crate::HostId,
        /// The lab's topology.
        topology: crate::Topology,
    },
    /// The kernel refused the MTU.
    #[error("MTU {mtu} refused by the kernel on {ifname}: {reason}")]
    MtuRefused {
        /// The MTU asked for.
        mtu: u32,
        /// The interface it was set on.
        ifname: String,
        /// The kernel's error.
        reason: String,
    },
    /// The kernel refused the number of veth queues.
    #[error("{queues} veth queue(s) refused by the kernel: {reason}")]
    QueuesRefused {
        /// The queue count asked for.
        queues: u16,
        /// The kernel's error.
        reason: String,
    },
    /// An impairment option that netem cannot take.
    #[error("invalid impairment: {0}")]
    InvalidImpairment(String),
    /// A netlink request failed.
    #[error("{what}: {reason}")]
    Netlink {
        /// What was being done.
        what: String,
        /// The kernel's (or the socket's) error.
        reason: String,
    },
    /// A namespace operation (create, enter, mount, remove) failed.
    #[error("{what}: {reason}")]
    Netns {
        /// What was being done.
        what: String,
        /// The system error.
        reason: String,
    },
    /// An external tool (`tc`, `ethtool`, `ip`) failed.
    #[error("{what} failed: {detail}")]
    Command {
        /// The command line that was run.
        what: String,
        /// Its exit status and first line of stderr.
        detail: String,
    },
    /// A file-system or thread operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl LabError {
    /// An `Io` error with context.
    pub(crate) fn io(what: impl fmt::Display, source: std::io::Error) -> Self {
        Self::Io {
            what: what.to_string(),
            source,
        }
    }

    /// A `Netns` error with context.
    pub(crate) fn netns(what: impl fmt::Display, errno: nix::Error) -> Self {
        Self::Netns {
            what: what.to_string(),
            reason: std::io::Error::from(errno).to_string(),
        }
    }

    /// A `Netlink` error with context; kernel errors print as errno text.
    pub(crate) fn netlink(what: impl fmt::Display, err: &rtnetlink::Error) -> Self {
        Self::Netlink {
            what: what.to_string(),
            reason: netlink_reason(err),
        }
    }
}

/// The kernel's answer in a netlink error, as `strerror` text.
pub(crate) fn netlink_reason(err: &rtnetlink::Error) -> String {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io().to_string(),
        other => other.to_string(),
    }
}

/// The errno in a netlink error, if the kernel sent one.
pub(crate) fn netlink_errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.to_io().raw_os_error(),
        _ => None,
    }
}
