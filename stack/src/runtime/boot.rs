//! What surge keeps for the machine's boot, read where I/O is allowed: the secrets
//! file and the boot-time clock. The protocol code receives the results as numbers
//! ([`Secrets`], `EngineConfig::clock_base`).
//!
//! The secrets file (default [`DEFAULT_SECRETS_PATH`], or `$SURGE_SECRETS_FILE`) holds
//! the 32-byte master secret, drawn from getrandom by the first surge process after
//! boot and read by every later one, so ISNs, timestamp offsets and port choices
//! continue across restarts as the kernel's own do. `/run` is a tmpfs: the file is
//! gone at reboot, and a new boot draws a new secret. It is created atomically (a
//! private temporary file, linked into place; a process that loses the race reads
//! the winner's), mode 0600 in a 0700 directory, and refused when other users could
//! read it or its size is wrong.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::secrets::Secrets;

/// Where the secrets live unless `$SURGE_SECRETS_FILE` says otherwise.
pub const DEFAULT_SECRETS_PATH: &str = "/run/surge/secrets";

/// The environment variable that points the secrets file elsewhere (tests).
pub const SECRETS_PATH_VAR: &str = "SURGE_SECRETS_FILE";

/// Why the boot secrets could not be had.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    /// The file or its directory could not be created, read or linked.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The OS's entropy source failed.
    #[error("getrandom: {0}")]
    Entropy(String),
    /// The boot-time clock could not be read.
    #[error("clock_gettime(CLOCK_BOOTTIME): {0}")]
    Clock(io::Error),
    /// The file exists but is not a secrets file surge wrote.
    #[error("{path}: {reason} (remove it; the next surge process writes a new one)")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// The secrets file in use: `$SURGE_SECRETS_FILE` if set, else [`DEFAULT_SECRETS_PATH`].
pub fn secrets_path() -> PathBuf {
    std::env::var_os(SECRETS_PATH_VAR)
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_SECRETS_PATH), PathBuf::from)
}

/// This boot's secrets from [`secrets_path`], created on first use.
pub fn boot_secrets() -> Result<Secrets, BootError> {
    load_or_create_secrets(&secrets_path())
}

/// The boot-time clock (`CLOCK_BOOTTIME`: monotonic, counting suspend, zero at boot).
///
/// Read it at or before the moment an engine's clock starts counting (its
/// `Instant::ZERO`) and pass it as `EngineConfig::clock_base`: read before, the sum
/// never runs ahead of the real boot time, so a later process always continues
/// above every value an earlier one used.
pub fn boot_clock() -> Result<Duration, BootError> {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map_err(|e| BootError::Clock(e.into()))?;
    let secs = u64::try_from(ts.tv_sec()).map_err(|e| BootError::Clock(io::Error::other(e)))?;
    let nanos = u32::try_from(ts.tv_nsec()).map_err(|e| BootError::Clock(io::Error::other(e)))?;
    Ok(Duration::new(secs, nanos))
}

/// Reads the secrets at `path`, or draws new ones and creates the file atomically.
pub fn load_or_create_secrets(path: &Path) -> Result<Secrets, BootError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| BootError::Io { path, source }
    };
    match read_secrets(path) {
        Ok(secrets) => return Ok(secrets),
        Err(BootError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))?;
    let mut master = [0u8; Secrets::LEN];
    getrandom::fill(&mut master).map_err(|e| BootError::Entropy(e.to_string()))?;
    let file_name = path
        .file_name()
        .map_or_else(|| "secrets".into(), |n| n.to_string_lossy().into_owned());
    // Unique per process and call: racing creators never share a temporary file.
    static ATTEMPT: AtomicU64 = AtomicU64::new(0);
    let attempt = ATTEMPT.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{file_name}.{}.{attempt}.tmp", std::process::id()));
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(&master)?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(&tmp)(e));
    }
    // link(2) fails with EEXIST instead of replacing: the first writer wins and
    // nobody ever sees a partly written file.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(Secrets::from_bytes(master)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_secrets(path),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Reads and checks an existing secrets file.
fn read_secrets(path: &Path) -> Result<Secrets, BootError> {
    let io_err = |source| BootError::Io {
        path: path.to_owned(),
        source,
    };
    let malformed = |reason: String| BootError::Malformed {
        path: path.to_owned(),
        reason,
    };
    let mut file = OpenOptions::new().read(true).open(path).map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(malformed("not a regular file".into()));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(malformed(format!(
            "mode {:o} lets other users read it (want 600)",
            meta.permissions().mode() & 0o777
        )));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(malformed(format!("owned by uid {}, not us", meta.uid())));
    }
    let mut master = [0u8; Secrets::LEN];
    let mut extra = [0u8; 1];
    file.read_exact(&mut master).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            malformed(format!("shorter than {} bytes", Secrets::LEN))
        } else {
            io_err(e)
        }
    })?;
    if file.read(&mut extra).map_err(io_err)? != 0 {
        return Err(malformed(format!("longer than {} bytes", Secrets::LEN)));
    }
    Ok(Secrets::from_bytes(master))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "surge-boot-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn first_call_creates_a_private_file_later_calls_read_the_same_secrets() {
        let dir = scratch("create");
        let path = dir.join("sub/secrets");
        let a = load_or_create_secrets(&path).expect("create");
        let meta = std::fs::metadata(&path).expect("file exists");
        assert_eq!(meta.len(), Secrets::LEN as u64);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dir_mode = std::fs::metadata(path.parent().expect("parent"))
            .expect("dir")
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let b = load_or_create_secrets(&path).expect("read back");
        assert_eq!(a, b, "a second process gets the same secrets");
        assert_ne!(a.master(), &[0u8; Secrets::LEN], "drawn, not zero");
        // No temporary file left behind.
        let left: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
        // Another file (another boot) has other secrets.
        let other = load_or_create_secrets(&dir.join("other")).expect("create other");
        assert_ne!(other, a);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn racing_creators_all_end_with_one_secret() {
        let dir = scratch("race");
        let path = dir.join("secrets");
        let got: Vec<Secrets> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create_secrets(&path)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread").expect("secrets"))
                .collect()
        });
        assert!(got.windows(2).all(|w| w[0] == w[1]), "one winner");
        assert_eq!(got[0], load_or_create_secrets(&path).expect("read"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn malformed_or_exposed_files_are_refused_not_replaced() {
        let dir = scratch("bad");
        std::fs::create_dir_all(&dir).expect("dir");
        let short = dir.join("short");
        std::fs::write(&short, [1u8; 5]).expect("write");
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let e = load_or_create_secrets(&short).expect_err("short file");
        assert!(e.to_string().contains("shorter"), "{e}");
        let long = dir.join("long");
        std::fs::write(&long, [1u8; 40]).expect("write");
        std::fs::set_permissions(&long, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let e = load_or_create_secrets(&long).expect_err("long file");
        assert!(e.to_string().contains("longer"), "{e}");
        let exposed = dir.join("exposed");
        std::fs::write(&exposed, [1u8; Secrets::LEN]).expect("write");
        std::fs::set_permissions(&exposed, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = load_or_create_secrets(&exposed).expect_err("readable by others");
        assert!(e.to_string().contains("mode 644"), "{e}");
        // Refused files are left as they were.
        assert_eq!(std::fs::read(&exposed).expect("read"), [1u8; Secrets::LEN]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn boot_clock_rises() {
        let a = boot_clock().expect("CLOCK_BOOTTIME");
        std::thread::sleep(Duration::from_millis(2));
        let b = boot_clock().expect("CLOCK_BOOTTIME");
        assert!(b > a && a > Duration::ZERO, "{a:?} {b:?}");
    }
}
