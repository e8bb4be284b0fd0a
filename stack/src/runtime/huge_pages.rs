//! Transparent huge pages for the program's heap, as DPDK stacks run on huge pages.
//!
//! With many connections, every segment touches its connection's `Tcb`, socket slot and
//! table entry, spread over tens of megabytes: with 4 KiB pages most of those touches
//! also miss the TLB. In memory, 10,000 connections ran at 0.54x the requests/s of one
//! connection with 4 KiB pages and 0.63x with glibc's heap on transparent huge pages
//! (`surge-bench engine --part surge-memory --connections 1,10000`, README). glibc takes
//! that setting (`glibc.malloc.hugetlb=1`, glibc 2.35 and later) only from the
//! environment at start, so [`reexec_with_huge_pages`] starts the program again with it.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The glibc tunable that makes malloc ask for transparent huge pages (`madvise`).
const TUNABLE: &str = "glibc.malloc.hugetlb";

/// Setting this to `0` keeps the heap on ordinary pages.
pub const OPT_OUT: &str = "SURGE_HUGE_PAGES";

/// Why the program was not started again.
#[derive(Debug, PartialEq, Eq)]
pub enum Skipped {
    /// `SURGE_HUGE_PAGES=0`.
    OptedOut,
    /// `GLIBC_TUNABLES` already says what malloc does with huge pages.
    AlreadySet,
    /// The kernel's transparent huge pages are `never` (or unknown).
    Unavailable,
    /// Running under valgrind, whose tools would not follow the new program.
    UnderValgrind,
    /// `exec` failed.
    ExecFailed(std::io::ErrorKind),
}

/// The `GLIBC_TUNABLES` value with huge pages added, or why not: `tunables` is the
/// current value, `thp` the kernel's `transparent_hugepage/enabled`, `opt_out` the value
/// of [`OPT_OUT`], `preload` of `LD_PRELOAD`.
pub fn plan(
    tunables: Option<&str>,
    thp: Option<&str>,
    opt_out: Option<&str>,
    preload: Option<&str>,
) -> Result<String, Skipped> {
    if opt_out.is_some_and(|v| v.trim() == "0") {
        return Err(Skipped::OptedOut);
    }
    if tunables.is_some_and(|t| t.contains(TUNABLE)) {
        return Err(Skipped::AlreadySet);
    }
    // The active mode is the bracketed one: "always [madvise] never".
    if !thp.is_some_and(|t| t.contains("[always]") || t.contains("[madvise]")) {
        return Err(Skipped::Unavailable);
    }
    if preload.is_some_and(|p| p.contains("vgpreload")) {
        return Err(Skipped::UnderValgrind);
    }
    Ok(match tunables {
        Some(t) if !t.is_empty() => format!("{t}:{TUNABLE}=1"),
        _ => format!("{TUNABLE}=1"),
    })
}

/// Starts the running program again, same arguments, with glibc's heap on transparent
/// huge pages; returns only when it does not (see [`Skipped`]). Call it first in `main`,
/// before any thread or file is opened.
pub fn reexec_with_huge_pages() -> Skipped {
    let var = |name: &str| std::env::var(name).ok();
    let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").ok();
    let tunables = match plan(
        var("GLIBC_TUNABLES").as_deref(),
        thp.as_deref(),
        var(OPT_OUT).as_deref(),
        var("LD_PRELOAD").as_deref(),
    ) {
        Ok(t) => t,
        Err(skipped) => return skipped,
    };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| OsString::from("surge"));
    let error = Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env("GLIBC_TUNABLES", tunables)
        .exec();
    Skipped::ExecFailed(error.kind())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MADVISE: Option<&str> = Some("always [madvise] never\n");

    #[test]
    fn adds_the_tunable_once() {
        assert_eq!(
            plan(None, MADVISE, None, None),
            Ok("glibc.malloc.hugetlb=1".into())
        );
        assert_eq!(
            plan(Some("glibc.malloc.arena_max=2"), MADVISE, None, None),
            Ok("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1".into())
        );
        // The started program finds it set and goes on.
        assert_eq!(
            plan(Some("glibc.malloc.hugetlb=1"), MADVISE, None, None),
            Err(Skipped::AlreadySet)
        );
    }

    #[test]
    fn respects_the_opt_out_the_kernel_and_valgrind() {
        assert_eq!(plan(None, MADVISE, Some("0"), None), Err(Skipped::OptedOut));
        assert_eq!(
            plan(None, Some("always madvise [never]"), None, None),
            Err(Skipped::Unavailable)
        );
        assert_eq!(plan(None, None, None, None), Err(Skipped::Unavailable));
        assert_eq!(
            plan(None, Some("[always] madvise never"), Some("1"), None),
            Ok("glibc.malloc.hugetlb=1".into())
        );
        assert_eq!(
            plan(
                None,
                MADVISE,
                None,
                Some("/usr/libexec/valgrind/vgpreload_core-amd64-linux.so")
            ),
            Err(Skipped::UnderValgrind)
        );
    }
}
