//! Typed errors of the loader.

/// Why the steering program could not be loaded, configured, attached or read.
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    /// The interface does not exist in the calling thread's network namespace.
    #[error("interface {0:?} does not exist in this network namespace")]
    NoSuchInterface(String),
    /// Opening or loading the BPF object failed (verifier, permissions, kernel support).
    #[error("loading the XDP program: {0}")]
    Load(#[source] libbpf_rs::Error),
    /// Another XDP program is already attached to the interface.
    #[error(
        "interface {ifname} already has an XDP program (id {prog_id}, {name:?}); \
         remove it first (`surge xdp detach {ifname}`)"
    )]
    AlreadyAttached {
        /// The interface.
        ifname: String,
        /// Id of the program found.
        prog_id: u32,
        /// Its name.
        name: String,
    },
    /// The interface refused the program in every mode tried.
    #[error("attaching the XDP program to {ifname} ({mode}): {source}")]
    Attach {
        /// The interface.
        ifname: String,
        /// The mode(s) tried.
        mode: &'static str,
        /// The last error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// A map update or lookup failed.
    #[error("{what}: {source}")]
    Map {
        /// What we were doing.
        what: &'static str,
        /// The kernel's answer.
        #[source]
        source: libbpf_rs::Error,
    },
    /// A queue id outside the XSKMAP (64 slots).
    #[error("queue {0} is outside the XSKMAP (at most 64 queues)")]
    QueueOutOfRange(u32),
    /// A bad configuration value (for example an empty ephemeral range).
    #[error("invalid steering configuration: {0}")]
    BadConfig(String),
    /// Querying or detaching by interface failed.
    #[error("{what} on {ifname}: {source}")]
    Netlink {
        /// What we were doing.
        what: &'static str,
        /// The interface.
        ifname: String,
        /// The kernel's answer.
        #[source]
        source: std::io::Error,
    },
}
