//! Remembering the network namespace a program was attached in, so detaching
//! from any thread (a `Drop` on another thread, after a guard was dropped)
//! talks to the right namespace and never to an unrelated interface that
//! happens to have the same index elsewhere.

use std::{fs::File, io, os::fd::AsRawFd, os::unix::fs::MetadataExt};

const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// The calling thread's network namespace.
pub(crate) fn current() -> io::Result<File> {
    File::open(THREAD_NETNS)
}

/// While alive, the calling thread is in the target namespace.
pub(crate) struct InNetns {
    original: Option<File>,
}

impl InNetns {
    /// Moves the calling thread into `target` (no-op if already there).
    pub(crate) fn enter(target: &File) -> io::Result<Self> {
        let original = current()?;
        let (now, want) = (original.metadata()?, target.metadata()?);
        if now.dev() == want.dev() && now.ino() == want.ino() {
            return Ok(Self { original: None });
        }
        setns(target)?;
        Ok(Self {
            original: Some(original),
        })
    }
}

impl Drop for InNetns {
    fn drop(&mut self) {
        if let Some(original) = &self.original {
            if let Err(err) = setns(original) {
                tracing::error!(%err, "could not return the thread to its network namespace");
            }
        }
    }
}

fn setns(ns: &File) -> io::Result<()> {
    // Safety: `ns` is an open namespace file; setns only changes the calling
    // thread's network namespace.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
