//! Which XDP program an interface has, and removing it (for `surge xdp
//! status` / `surge xdp detach` after a crash) — by interface, no program fd.

use std::{ffi::CStr, mem::size_of};

use crate::{BpfError, PROGRAM_NAME};

/// The XDP program attached to an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedProgram {
    /// Kernel program id.
    pub prog_id: u32,
    /// `native`, `generic`, `offload` or `multi`.
    pub mode: &'static str,
    /// Program name as the kernel reports it (at most 15 bytes).
    pub name: String,
}

impl AttachedProgram {
    /// Whether it is surge's steering program.
    pub fn is_surge(&self) -> bool {
        self.name == PROGRAM_NAME
    }
}

/// Looks up the interface index in the calling thread's network namespace.
pub(crate) fn ifindex(ifname: &str) -> Result<i32, BpfError> {
    let c_name =
        std::ffi::CString::new(ifname).map_err(|_| BpfError::NoSuchInterface(ifname.to_owned()))?;
    // Safety: `c_name` is a valid NUL-terminated string alive for the call.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        return Err(BpfError::NoSuchInterface(ifname.to_owned()));
    }
    Ok(index as i32)
}

/// The XDP program on `ifname`, if any.
pub fn attached_program(ifname: &str) -> Result<Option<AttachedProgram>, BpfError> {
    let index = ifindex(ifname)?;
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: size_of::<libbpf_sys::bpf_xdp_query_opts>() as _,
        ..Default::default()
    };
    // Safety: `opts` is a valid, sized options struct that outlives the call.
    let rc = unsafe { libbpf_sys::bpf_xdp_query(index, 0, &mut opts) };
    if rc < 0 {
        return Err(BpfError::Netlink {
            what: "querying XDP",
            ifname: ifname.to_owned(),
            source: std::io::Error::from_raw_os_error(-rc),
        });
    }
    let (prog_id, mode) = match u32::from(opts.attach_mode) {
        libbpf_sys::XDP_ATTACHED_NONE => return Ok(None),
        libbpf_sys::XDP_ATTACHED_DRV => (opts.drv_prog_id, "native"),
        libbpf_sys::XDP_ATTACHED_SKB => (opts.skb_prog_id, "generic"),
        libbpf_sys::XDP_ATTACHED_HW => (opts.hw_prog_id, "offload"),
        _ => (opts.prog_id, "multi"),
    };
    Ok(Some(AttachedProgram {
        prog_id,
        mode,
        name: program_name(prog_id),
    }))
}

/// Removes the XDP program from `ifname`: only surge's unless `force`.
/// Returns what was removed (`None`: nothing was attached).
pub fn detach_program(ifname: &str, force: bool) -> Result<Option<AttachedProgram>, BpfError> {
    let Some(program) = attached_program(ifname)? else {
        return Ok(None);
    };
    if !program.is_surge() && !force {
        return Err(BpfError::AlreadyAttached {
            ifname: ifname.to_owned(),
            prog_id: program.prog_id,
            name: program.name,
        });
    }
    let index = ifindex(ifname)?;
    for flags in [
        libbpf_sys::XDP_FLAGS_DRV_MODE,
        libbpf_sys::XDP_FLAGS_SKB_MODE,
        libbpf_sys::XDP_FLAGS_HW_MODE,
    ] {
        // Safety: detaching by interface index; a null options pointer is allowed.
        unsafe { libbpf_sys::bpf_xdp_detach(index, flags, std::ptr::null()) };
    }
    if let Some(still) = attached_program(ifname)? {
        return Err(BpfError::Netlink {
            what: "detaching XDP",
            ifname: ifname.to_owned(),
            source: std::io::Error::other(format!("program {} is still attached", still.prog_id)),
        });
    }
    Ok(Some(program))
}

/// Whether the kernel still holds a BPF program with id `prog_id` (a program attached to
/// nothing and referenced by no descriptor or pin is freed, its maps with it).
pub fn program_loaded(prog_id: u32) -> bool {
    // Safety: asks the kernel for a new descriptor of program `prog_id`; checked below.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(prog_id) };
    if fd < 0 {
        return false;
    }
    // Safety: `fd` came from bpf_prog_get_fd_by_id above and is closed once.
    unsafe { libc::close(fd) };
    true
}

/// The name of program `prog_id`, or `?` if it cannot be read.
fn program_name(prog_id: u32) -> String {
    // Safety: asks the kernel for a new descriptor of program `prog_id`; checked below.
    let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(prog_id) };
    if fd < 0 {
        return "?".into();
    }
    let mut info = libbpf_sys::bpf_prog_info::default();
    let mut len = size_of::<libbpf_sys::bpf_prog_info>() as u32;
    // Safety: `info` is a writable buffer of `len` bytes; `fd` is ours.
    let rc = unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info, &mut len) };
    // Safety: `fd` came from bpf_prog_get_fd_by_id above and is closed once.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return "?".into();
    }
    let bytes: Vec<u8> = info.name.iter().map(|&c| c as u8).collect();
    CStr::from_bytes_until_nul(&bytes)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "?".into())
}
