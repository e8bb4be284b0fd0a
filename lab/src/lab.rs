//! `Lab`: builds a topology of namespaces and veths, and removes it again.

use std::io::Write;
use std::process::{Command, Output};
use std::sync::{Mutex, Once};

use crate::delay_queue::DelayThread;
use crate::device_settings::{
    disable_ipv6, disable_tx_checksum_offload, enable_ip_forward, enable_threaded_napi,
    set_napi_deferral,
};
use crate::hosts_file::{remove_hosts_file, write_hosts_files};
use crate::layout::{Layout, all_netns_names, layout, netns_name};
use crate::netlink::{block_on, configure_link, create_veth, delete_link};
use crate::netns::{create_netns, delete_netns, list_netns, netns_exists};
use crate::spec::{NapiDeferral, validate_name};
use crate::status::{HostStatus, LabStatus};
use crate::{Host, HostId, LabError, LabSpec, Topology};

/// Labs this process built and still owns: what a Ctrl-C or SIGTERM removes.
static LIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());
static SIGNAL_HANDLER: Once = Once::new();

/// Records a lab this process owns and, the first time, installs a handler for
/// SIGINT/SIGTERM/SIGHUP that removes every such lab and exits with 130: a
/// process killed that way (a test under `timeout`, Ctrl-C) runs no destructor.
/// A program that installed its own handler first keeps it (installing fails
/// quietly) and is expected to stop and let its labs drop, as `surge` does.
pub(crate) fn register(name: &str) {
    if let Ok(mut live) = LIVE.lock() {
        live.push(name.to_owned());
    }
    crate::owners::record(name);
    SIGNAL_HANDLER.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            let names = LIVE
                .lock()
                .map(|mut live| std::mem::take(&mut *live))
                .unwrap_or_default();
            for name in names {
                let _ = down_by_name(&name);
                crate::owners::forget(&name);
                let _ = writeln!(
                    std::io::stderr(),
                    "surge-lab: interrupted; lab {name} removed"
                );
            }
            std::process::exit(130);
        });
    });
}

/// Removes, once per process, the labs whose owner was killed without a chance to
/// remove them (see `owners`).
fn remove_orphans() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for name in crate::owners::orphans() {
            match down_by_name(&name) {
                Ok(true) => {
                    let _ = writeln!(
                        std::io::stderr(),
                        "surge-lab: removed lab {name}, left by a process that was killed"
                    );
                }
                Ok(false) => {}
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "surge-lab: removing lab {name}: {e}");
                }
            }
        }
    });
}

/// Forgets a lab the process no longer owns (removed, or kept on purpose).
pub(crate) fn unregister(name: &str) {
    if let Ok(mut live) = LIVE.lock() {
        live.retain(|n| n != name);
    }
    crate::owners::forget(name);
}

/// A running lab. Dropping a lab made by [`Lab::up`] removes it (also while a panic
/// unwinds, and on SIGINT/SIGTERM/SIGHUP unless the program handles those itself);
/// [`Lab::keep`] leaves it running, [`Lab::down`] removes it and reports errors.
#[derive(Debug)]
pub struct Lab {
    name: String,
    topology: Topology,
    layout: Layout,
    /// Namespaces this handle removes on drop/down.
    owned: Vec<String>,
    /// Whether drop tears the lab down.
    armed: bool,
    /// Whether this handle made the lab (and registered it for the signal handler).
    made_here: bool,
    /// The thread that delays packets in the router, if the lab has a delay.
    delay: Option<DelayThread>,
}

/// Fails with `NotRoot` unless the process runs as root.
pub fn require_root() -> Result<(), LabError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(LabError::NotRoot)
    }
}

/// The hosts that have a namespace in this topology.
fn host_ids(topology: Topology) -> &'static [HostId] {
    match topology {
        Topology::Pair => &[HostId::A, HostId::B],
        Topology::Routed => &[HostId::A, HostId::Router, HostId::B],
    }
}

impl Lab {
    /// Builds the lab described by `spec`. On any failure, removes what it made and returns
    /// the error.
    pub fn up(spec: &LabSpec) -> Result<Lab, LabError> {
        require_root()?;
        validate_name(&spec.name)?;
        spec.impairment.validate()?;
        remove_orphans();
        if spec.topology == Topology::Pair && !spec.impairment.is_none() {
            return Err(LabError::InvalidImpairment(
                "impairments need the routed topology (they sit on the router; copy-mode \
                 AF_XDP transmit on A or B bypasses qdiscs)"
                    .to_string(),
            ));
        }
        let namespaces: Vec<String> = host_ids(spec.topology)
            .iter()
            .map(|&id| netns_name(&spec.name, id))
            .collect();
        // Any of the three names taken means the lab name is taken, whatever its topology.
        if let Some(taken) = all_netns_names(&spec.name)
            .iter()
            .find(|ns| netns_exists(ns))
        {
            return Err(LabError::NameInUse {
                lab: spec.name.clone(),
                netns: taken.clone(),
            });
        }
        let mut lab = Lab {
            name: spec.name.clone(),
            topology: spec.topology,
            layout: layout(&spec.name, spec.topology)?,
            owned: Vec::new(),
            armed: true,
            made_here: true,
            delay: None,
        };
        // From here on, an early return drops `lab`, which removes what was made so
        // far; a signal removes it through the handler.
        register(&lab.name);
        for netns in namespaces {
            if !create_netns(&netns)? {
                return Err(LabError::NameInUse {
                    lab: spec.name.clone(),
                    netns,
                });
            }
            lab.owned.push(netns.clone());
            disable_ipv6(&netns)?;
        }
        lab.build_links(spec)?;
        write_hosts_files(&lab.layout, &lab.owned)?;
        Ok(lab)
    }

    /// Creates the veths and configures everything inside the namespaces.
    fn build_links(&mut self, spec: &LabSpec) -> Result<(), LabError> {
        let layout = &self.layout;
        block_on(|| async move {
            for (left, right) in layout.veth_pairs() {
                create_veth(left, right, spec.queues).await?;
            }
            for end in layout.ends() {
                configure_link(end, spec.mtu).await?;
            }
            Ok(())
        })?;
        for end in layout.ends() {
            disable_tx_checksum_offload(end)?;
        }
        if spec.threaded_napi {
            enable_threaded_napi(&layout.a)?;
            enable_threaded_napi(&layout.b)?;
        }
        if let Some(deferral) = spec.napi_deferral {
            set_napi_deferral(&layout.a, deferral)?;
            set_napi_deferral(&layout.b, deferral)?;
        }
        if let Some(ra) = &layout.router_a {
            enable_ip_forward(&ra.netns)?;
            if !spec.impairment.is_none() {
                self.delay = crate::impairment::apply(&self.layout, &spec.impairment, spec.mtu)?;
            }
        }
        Ok(())
    }

    /// Re-opens an existing lab by name, e.g. from another process. A lab opened this way
    /// is not removed on drop, only by [`Lab::down`].
    pub fn attach(name: &str) -> Result<Lab, LabError> {
        validate_name(name)?;
        let a = netns_exists(&netns_name(name, HostId::A));
        let b = netns_exists(&netns_name(name, HostId::B));
        if !a && !b {
            return Err(LabError::NotFound(name.to_string()));
        }
        let topology = if netns_exists(&netns_name(name, HostId::Router)) {
            Topology::Routed
        } else {
            Topology::Pair
        };
        let owned = all_netns_names(name)
            .into_iter()
            .filter(|ns| netns_exists(ns))
            .collect();
        Ok(Lab {
            name: name.to_string(),
            topology,
            layout: layout(name, topology)?,
            owned,
            armed: false,
            made_here: false,
            delay: None,
        })
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The lab's topology.
    pub fn topology(&self) -> Topology {
        self.topology
    }

    /// A host of the lab; `Router` (its interface towards A) exists only in routed labs.
    pub fn host(&self, id: HostId) -> Option<&Host> {
        match id {
            HostId::A => Some(&self.layout.a),
            HostId::B => Some(&self.layout.b),
            HostId::Router => self.layout.router_a.as_ref(),
        }
    }

    /// The router's interface towards B (routed labs only).
    pub fn router_towards_b(&self) -> Option<&Host> {
        self.layout.router_b.as_ref()
    }

    /// Host A.
    pub fn a(&self) -> &Host {
        &self.layout.a
    }

    /// Host B.
    pub fn b(&self) -> &Host {
        &self.layout.b
    }

    /// Sets the NAPI deferral of A's and B's veths (see [`NapiDeferral`]); the
    /// kernel's defaults are [`NapiDeferral::OFF`].
    pub fn set_napi_deferral(&self, deferral: NapiDeferral) -> Result<(), LabError> {
        set_napi_deferral(&self.layout.a, deferral)?;
        set_napi_deferral(&self.layout.b, deferral)
    }

    /// Every veth end of the lab (A, B, and the router's two in a routed lab).
    pub fn interfaces(&self) -> Vec<&Host> {
        self.layout.ends()
    }

    /// The namespace of a host, or `NoSuchHost`.
    fn netns_of(&self, id: HostId) -> Result<&str, LabError> {
        self.host(id)
            .map(|h| h.netns.as_str())
            .ok_or_else(|| LabError::NoSuchHost {
                lab: self.name.clone(),
                host: id,
                topology: self.topology,
            })
    }

    /// A `Command` that runs `program` inside the host's namespace (via `ip netns exec`,
    /// which also gives it the namespace's view of `/sys`).
    pub fn command(&self, id: HostId, program: &str) -> Result<Command, LabError> {
        let netns = self.netns_of(id)?;
        let mut command = Command::new("ip");
        command.args(["netns", "exec", netns, program]);
        Ok(command)
    }

    /// Runs a command inside the host's namespace and collects its output.
    pub fn exec(&self, id: HostId, argv: &[&str]) -> Result<Output, LabError> {
        let (program, args) = argv.split_first().ok_or_else(|| LabError::Command {
            what: "an empty command".to_string(),
            detail: "nothing to run".to_string(),
        })?;
        self.command(id, program)?
            .args(args)
            .output()
            .map_err(|e| LabError::io("running ip netns exec", e))
    }

    /// What the kernel says about the lab: namespaces, interfaces, addresses, queues, XDP.
    pub fn status(&self) -> Result<LabStatus, LabError> {
        let mut hosts = Vec::new();
        for &id in host_ids(self.topology) {
            let netns = netns_name(&self.name, id);
            if !netns_exists(&netns) {
                continue;
            }
            let ns = netns.clone();
            let interfaces =
                block_on(|| async move { crate::netlink::dump_interfaces(&ns).await })?;
            let impairments = crate::impairment::describe(&netns);
            hosts.push(HostStatus {
                id,
                netns,
                interfaces,
                impairments,
            });
        }
        Ok(LabStatus {
            name: self.name.clone(),
            topology: self.topology,
            hosts,
        })
    }

    /// Removes the lab now, reporting the first error.
    pub fn down(mut self) -> Result<(), LabError> {
        self.armed = false;
        self.delay = None;
        let owned = std::mem::take(&mut self.owned);
        teardown(&self.layout, &owned)
    }

    /// Leaves the lab running after this handle is gone (for `surge lab up`).
    ///
    /// A lab with a delay loses its in-process delay thread here (forwarded packets then wait
    /// in the router's NFQUEUE); run [`serve_delay_queue`](crate::serve_delay_queue) in a
    /// process that stays, as `surge lab up` does.
    pub fn keep(mut self) {
        self.armed = false;
        self.delay = None;
    }

    /// Whether packets through the router are delayed by a thread of this process.
    pub fn has_delay_thread(&self) -> bool {
        self.delay.is_some()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Stop the delay thread first: its socket keeps the router namespace alive.
        self.delay = None;
        if !self.armed {
            if self.made_here {
                unregister(&self.name);
            }
            return;
        }
        let removed = teardown(&self.layout, &self.owned);
        if self.made_here {
            unregister(&self.name);
        }
        if let Err(err) = removed {
            tracing::warn!(lab = %self.name, "removing the lab: {err}");
            let _ = writeln!(
                std::io::stderr(),
                "surge-lab: removing lab {}: {err}",
                self.name
            );
        }
    }
}

/// Deletes the lab's veths in the given namespaces, then the namespaces; keeps going after
/// an error and returns the first one. Deleting a veth also detaches its XDP program.
fn teardown(layout: &Layout, namespaces: &[String]) -> Result<(), LabError> {
    let mut first_error = None;
    for netns in namespaces {
        if let Err(e) = remove_hosts_file(netns) {
            first_error.get_or_insert(e);
        }
        if !netns_exists(netns) {
            continue;
        }
        for end in layout.ends().into_iter().filter(|e| &e.netns == netns) {
            let (ns, ifname) = (netns.as_str(), end.ifname.as_str());
            if let Err(e) = block_on(|| async move { delete_link(ns, ifname).await }) {
                first_error.get_or_insert(e);
            }
        }
        if let Err(e) = delete_netns(netns) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Removes lab `name`, whatever state it is in; `Ok(false)` when nothing existed.
pub fn down_by_name(name: &str) -> Result<bool, LabError> {
    validate_name(name)?;
    let existing: Vec<String> = all_netns_names(name)
        .into_iter()
        .filter(|ns| netns_exists(ns))
        .collect();
    // A fan lab's client hosts, `surge-<name>-c<i>` (their veths go with them).
    let prefix = format!("surge-{name}-c");
    let clients: Vec<String> = list_netns()
        .into_iter()
        .filter(|ns| {
            ns.strip_prefix(&prefix)
                .is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    if existing.is_empty() && clients.is_empty() {
        return Ok(false);
    }
    require_root()?;
    let mut first_error = None;
    for netns in &clients {
        if let Err(e) = delete_netns(netns) {
            first_error.get_or_insert(e);
        }
    }
    // The routed layout names every interface a lab of this name can have.
    teardown(&layout(name, Topology::Routed)?, &existing)?;
    first_error.map_or(Ok(true), Err)
}

/// The names of all labs that have at least one namespace, sorted.
pub fn list_labs() -> Vec<String> {
    let mut labs: Vec<String> = list_netns()
        .iter()
        .filter_map(|ns| {
            let rest = ns.strip_prefix("surge-")?;
            let lab = rest
                .strip_suffix("-a")
                .or_else(|| rest.strip_suffix("-b"))
                .or_else(|| rest.strip_suffix("-r"))?;
            validate_name(lab).ok()?;
            Some(lab.to_string())
        })
        .collect();
    labs.sort();
    labs.dedup();
    labs
}
