//! Named network namespaces, as `ip netns` makes them, and moving threads into them.
//!
//! A named namespace is a file under `/run/netns` with the namespace bind-mounted on it, so
//! `ip netns exec` and `ip netns list` see ours. `setns` moves only the calling *thread*,
//! which is why work inside a namespace runs on a thread of its own (`spawn_in_netns`).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::LabError;

/// Where `ip netns` keeps named namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Set once `/run/netns` is known to be a shared mount point.
static RUN_DIR_READY: Mutex<bool> = Mutex::new(false);

/// The file of a named namespace (a path with a `/` is taken as it is).
pub(crate) fn netns_path(netns: &str) -> PathBuf {
    if netns.contains('/') {
        PathBuf::from(netns)
    } else {
        Path::new(NETNS_RUN_DIR).join(netns)
    }
}

/// Whether the named namespace exists.
pub fn netns_exists(netns: &str) -> bool {
    netns_path(netns).exists()
}

/// Makes `/run/netns` a shared mount point, as `ip netns add` does, once per process.
fn prepare_run_dir() -> Result<(), LabError> {
    let mut ready = RUN_DIR_READY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *ready {
        return Ok(());
    }
    std::fs::create_dir_all(NETNS_RUN_DIR)
        .map_err(|e| LabError::io(format!("creating {NETNS_RUN_DIR}"), e))?;
    let shared = || {
        nix::mount::mount(
            Some(""),
            NETNS_RUN_DIR,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    if let Err(first) = shared() {
        if first != nix::Error::EINVAL {
            return Err(LabError::netns(
                format!("making {NETNS_RUN_DIR} shared"),
                first,
            ));
        }
        // Not a mount point yet: bind it onto itself, then make it shared (iproute2 does this).
        nix::mount::mount(
            Some(NETNS_RUN_DIR),
            NETNS_RUN_DIR,
            Some("none"),
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| LabError::netns(format!("bind-mounting {NETNS_RUN_DIR}"), e))?;
        shared().map_err(|e| LabError::netns(format!("making {NETNS_RUN_DIR} shared"), e))?;
    }
    *ready = true;
    Ok(())
}

/// Creates the named namespace `netns`; `Ok(false)` if that name already exists.
pub(crate) fn create_netns(netns: &str) -> Result<bool, LabError> {
    prepare_run_dir()?;
    let path = netns_path(netns);
    match OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(file) => drop(file),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(LabError::io(format!("creating {}", path.display()), e)),
    }
    let target = path.clone();
    // A fresh thread unshares into a new namespace and pins it with a bind mount; the
    // thread then ends, and the namespace lives on through the mount.
    let made = std::thread::Builder::new()
        .name("surge-netns-add".to_string())
        .spawn(move || -> Result<(), LabError> {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| LabError::netns("unshare(CLONE_NEWNET)", e))?;
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                Some("none"),
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| LabError::netns(format!("bind-mounting {}", target.display()), e))
        })
        .map_err(|e| LabError::io("spawning a thread", e))?
        .join()
        .unwrap_or_else(|_| {
            Err(LabError::Netns {
                what: format!("creating namespace {netns}"),
                reason: "the thread panicked".to_string(),
            })
        });
    if let Err(err) = made {
        let _ = std::fs::remove_file(&path);
        return Err(err);
    }
    Ok(true)
}

/// Removes the named namespace `netns`; `Ok(false)` if it did not exist.
pub(crate) fn delete_netns(netns: &str) -> Result<bool, LabError> {
    let path = netns_path(netns);
    if !path.exists() {
        return Ok(false);
    }
    match nix::mount::umount2(&path, MntFlags::MNT_DETACH) {
        // EINVAL: the file is there but nothing is mounted on it (a half-made namespace).
        Ok(()) | Err(nix::Error::EINVAL | nix::Error::ENOENT) => {}
        Err(e) => return Err(LabError::netns(format!("unmounting {}", path.display()), e)),
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(LabError::io(format!("removing {}", path.display()), e)),
    }
}

/// The names under `/run/netns`.
pub(crate) fn list_netns() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(NETNS_RUN_DIR) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}

/// While alive, the current thread is inside another network namespace; dropping it moves
/// the thread back. Not `Send`: only the thread that entered may leave.
#[must_use = "the thread leaves the namespace when the guard is dropped"]
pub struct NetnsGuard {
    original: File,
    netns: String,
    _not_send: PhantomData<*const ()>,
}

impl NetnsGuard {
    /// The namespace this guard entered.
    pub fn netns(&self) -> &str {
        &self.netns
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Err(e) = nix::sched::setns(&self.original, CloneFlags::CLONE_NEWNET) {
            tracing::error!(netns = %self.netns, "could not return the thread to its namespace: {e}");
        }
    }
}

/// Moves the current thread into the named namespace until the guard is dropped.
pub fn enter_netns(netns: &str) -> Result<NetnsGuard, LabError> {
    let original = File::open("/proc/thread-self/ns/net")
        .map_err(|e| LabError::io("opening /proc/thread-self/ns/net", e))?;
    let path = netns_path(netns);
    let target = File::open(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            LabError::Netns {
                what: format!("entering namespace {netns}"),
                reason: "it does not exist".to_string(),
            }
        } else {
            LabError::io(format!("opening {}", path.display()), e)
        }
    })?;
    nix::sched::setns(&target, CloneFlags::CLONE_NEWNET)
        .map_err(|e| LabError::netns(format!("entering namespace {netns}"), e))?;
    Ok(NetnsGuard {
        original,
        netns: netns.to_string(),
        _not_send: PhantomData,
    })
}

/// Runs `f` on a new thread that lives inside the named namespace.
pub fn spawn_in_netns<F, R>(netns: &str, f: F) -> std::thread::JoinHandle<Result<R, LabError>>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let netns = netns.to_string();
    std::thread::spawn(move || {
        let _guard = enter_netns(&netns)?;
        Ok(f())
    })
}

/// Runs `f` inside the namespace on a scoped thread and waits for it.
pub(crate) fn run_in_netns<R: Send>(
    netns: &str,
    f: impl FnOnce() -> Result<R, LabError> + Send,
) -> Result<R, LabError> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let _guard = enter_netns(netns)?;
                f()
            })
            .join()
            .unwrap_or_else(|_| {
                Err(LabError::Netns {
                    what: format!("working in namespace {netns}"),
                    reason: "the thread panicked".to_string(),
                })
            })
    })
}

/// Runs a command whose process starts in the namespace (it inherits the thread's).
///
/// Unlike `ip netns exec`, `/sys` is not remounted: use it for tools that talk to the
/// kernel through sockets (`tc`, `ethtool`), not for ones that read `/sys/class/net`.
pub(crate) fn command_in_netns(netns: &str, argv: &[&str]) -> Result<Output, LabError> {
    let (program, args) = argv.split_first().ok_or_else(|| LabError::Command {
        what: "an empty command".to_string(),
        detail: "nothing to run".to_string(),
    })?;
    run_in_netns(netns, || {
        Command::new(program)
            .args(args)
            .output()
            .map_err(|e| LabError::io(format!("running {program}"), e))
    })
}

/// Runs a command in the namespace and turns a non-zero exit into an error.
pub(crate) fn checked_command_in_netns(netns: &str, argv: &[&str]) -> Result<(), LabError> {
    let output = command_in_netns(netns, argv)?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    Err(LabError::Command {
        what: format!("`{}` in {netns}", argv.join(" ")),
        detail: format!("{}: {}", output.status, first.trim()),
    })
}

/// Writes a sysctl of the namespace (`/proc/sys/net` shows the opening thread's namespace).
pub(crate) fn write_sysctl(netns: &str, key_path: &str, value: &str) -> Result<(), LabError> {
    run_in_netns(netns, || {
        let mut file = OpenOptions::new()
            .write(true)
            .open(key_path)
            .map_err(|e| LabError::io(format!("opening {key_path} in {netns}"), e))?;
        file.write_all(value.as_bytes())
            .map_err(|e| LabError::io(format!("writing {key_path} in {netns}"), e))
    })
}
