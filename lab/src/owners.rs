//! Who owns each lab being built or run, on disk, so that a lab whose process was
//! killed outright (SIGKILL: a CI job's time limit, a session's end), which runs no
//! destructor and no signal handler, is removed by the next process that builds one.
//!
//! Each lab made by `Lab::up` has a file `/run/surge-lab/owners/<name>` holding its
//! owner's pid and the start time the kernel gives that process (field 22 of
//! `/proc/<pid>/stat`, so a reused pid is not mistaken for the owner). The file goes
//! when the lab is removed or kept on purpose (`Lab::keep`: `surge lab up`). `/run`
//! is a tmpfs: the records go at reboot, with the namespaces they describe.

use std::path::{Path, PathBuf};

/// Where the records live.
const DIR: &str = "/run/surge-lab/owners";

/// `pid start-time` of this process, as its record says it.
fn me() -> Option<String> {
    let pid = std::process::id();
    Some(format!("{pid} {}", start_time(pid)?))
}

/// The start time of process `pid` (in clock ticks since boot), if it runs.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count fields after
    // its closing parenthesis. Field 22 is the 20th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn record_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Records that this process owns lab `name` (best effort: without the record the
/// lab is still removed by this process's drop or signal handler).
pub(crate) fn record(name: &str) {
    record_in(Path::new(DIR), name);
}

fn record_in(dir: &Path, name: &str) {
    if let Some(owner) = me() {
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::write(record_path(dir, name), owner);
    }
}

/// Forgets the record of lab `name` (removed, or kept on purpose).
pub(crate) fn forget(name: &str) {
    let _ = std::fs::remove_file(record_path(Path::new(DIR), name));
}

/// The labs whose recorded owner no longer runs: their records are removed and
/// their names returned, for the caller to take down.
pub(crate) fn orphans() -> Vec<String> {
    orphans_in(Path::new(DIR))
}

fn orphans_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dead = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let mut fields = text.split_whitespace();
        let owner = fields.next().and_then(|p| p.parse::<u32>().ok());
        let started = fields.next().and_then(|t| t.parse::<u64>().ok());
        let alive = match (owner, started) {
            (Some(pid), Some(started)) => start_time(pid) == Some(started),
            // A record we cannot read names no owner we could check: leave it.
            _ => true,
        };
        if !alive && std::fs::remove_file(entry.path()).is_ok() {
            dead.push(name);
        }
    }
    dead
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("surge-owners-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn this_process_reads_its_own_start_time() {
        let own = start_time(std::process::id()).expect("our own /proc stat");
        assert!(own > 0);
        assert_eq!(me(), Some(format!("{} {own}", std::process::id())));
    }

    #[test]
    fn a_lab_of_a_running_owner_is_no_orphan_and_a_dead_owners_is() {
        let dir = scratch("orphans");
        record_in(&dir, "live-lab");
        // A finished child's pid with our start time: not the process the record names
        // (even were the pid reused, the start time would differ).
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let gone = child.id();
        child.wait().expect("wait");
        let started = start_time(std::process::id()).expect("own start time");
        std::fs::write(dir.join("dead-lab"), format!("{gone} {started}")).expect("write");
        std::fs::write(dir.join("garbled-lab"), "not a record").expect("write");
        assert_eq!(orphans_in(&dir), vec!["dead-lab".to_string()]);
        assert!(
            !dir.join("dead-lab").exists(),
            "the orphan's record is gone"
        );
        assert!(dir.join("live-lab").exists() && dir.join("garbled-lab").exists());
        assert!(orphans_in(&dir).is_empty(), "reported once");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
