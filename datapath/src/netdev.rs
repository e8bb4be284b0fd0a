//! What a device says it can do for XDP and AF_XDP, asked over the `netdev`
//! generic netlink family (Linux 6.3+; `xsk-features` from 6.8) in the
//! calling thread's network namespace.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

const NETLINK_GENERIC: libc::c_int = 16;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NETDEV_A_DEV_XSK_FEATURES: u16 = 6;
const NETDEV_XDP_ACT_XSK_ZEROCOPY: u64 = 8;
const NETDEV_XSK_FLAGS_TX_TIMESTAMP: u64 = 1;
const NETDEV_XSK_FLAGS_TX_CHECKSUM: u64 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_HEADER: usize = 16;
const GENL_HEADER: usize = 4;

/// XDP / AF_XDP features a device advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XdpFeatures {
    /// The driver supports AF_XDP zero-copy.
    pub zero_copy: bool,
    /// The driver computes checksums requested through AF_XDP TX metadata.
    pub tx_checksum: bool,
    /// The driver reports TX timestamps through AF_XDP TX metadata.
    pub tx_timestamp: bool,
}

/// Asks the kernel for the features of interface `ifindex`; `None` when the
/// kernel has no `netdev` netlink family (older than 6.3).
pub(crate) fn query(ifindex: u32) -> io::Result<Option<XdpFeatures>> {
    let socket = NetlinkSocket::open()?;
    let mut name = b"netdev\0".to_vec();
    let family_request = message(
        GENL_ID_CTRL,
        CTRL_CMD_GETFAMILY,
        CTRL_ATTR_FAMILY_NAME,
        &mut name,
    );
    let reply = match socket.request(&family_request) {
        Ok(reply) => reply,
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(err) => return Err(err),
    };
    let family = attribute(&reply, CTRL_ATTR_FAMILY_ID)
        .and_then(|v| v.get(..2))
        .map(|v| u16::from_ne_bytes([v[0], v[1]]))
        .ok_or_else(|| io::Error::other("netdev family id missing"))?;
    let mut index = ifindex.to_ne_bytes().to_vec();
    let reply = socket.request(&message(
        family,
        NETDEV_CMD_DEV_GET,
        NETDEV_A_DEV_IFINDEX,
        &mut index,
    ))?;
    let u64_attr = |kind| {
        attribute(&reply, kind)
            .and_then(|v| v.get(..8))
            .map_or(0, |v| u64::from_ne_bytes(v.try_into().unwrap_or([0; 8])))
    };
    let xdp = u64_attr(NETDEV_A_DEV_XDP_FEATURES);
    let xsk = u64_attr(NETDEV_A_DEV_XSK_FEATURES);
    Ok(Some(XdpFeatures {
        zero_copy: xdp & NETDEV_XDP_ACT_XSK_ZEROCOPY != 0,
        tx_checksum: xsk & NETDEV_XSK_FLAGS_TX_CHECKSUM != 0,
        tx_timestamp: xsk & NETDEV_XSK_FLAGS_TX_TIMESTAMP != 0,
    }))
}

/// A generic netlink request with one attribute.
fn message(kind: u16, command: u8, attr: u16, payload: &mut Vec<u8>) -> Vec<u8> {
    while payload.len() % 4 != 0 {
        payload.push(0);
    }
    let attr_len = 4 + payload.len();
    let total = NLMSG_HEADER + GENL_HEADER + attr_len;
    let mut m = Vec::with_capacity(total);
    m.extend((total as u32).to_ne_bytes());
    m.extend(kind.to_ne_bytes());
    m.extend(NLM_F_REQUEST.to_ne_bytes());
    m.extend(1u32.to_ne_bytes()); // sequence
    m.extend(0u32.to_ne_bytes()); // port id: the kernel
    m.extend([command, 1, 0, 0]); // genl command, version 1
    m.extend((attr_len as u16).to_ne_bytes());
    m.extend(attr.to_ne_bytes());
    m.extend(payload.iter());
    m
}

/// The payload of attribute `kind` in a genl reply (after both headers), if present.
fn attribute(reply: &[u8], kind: u16) -> Option<&[u8]> {
    let mut rest = reply.get(NLMSG_HEADER + GENL_HEADER..)?;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
        let attr_kind = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < 4 || len > rest.len() {
            return None;
        }
        if attr_kind == kind {
            return rest.get(4..len);
        }
        rest = rest.get(len.div_ceil(4) * 4..).unwrap_or_default();
    }
    None
}

struct NetlinkSocket {
    fd: OwnedFd,
}

impl NetlinkSocket {
    fn open() -> io::Result<Self> {
        // Safety: plain socket creation; checked below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_GENERIC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            // Safety: a fresh descriptor we own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Sends one request and returns the reply message (an error reply becomes an `Err`).
    fn request(&self, request: &[u8]) -> io::Result<Vec<u8>> {
        // Safety: `request` is a live buffer of the length passed.
        let sent = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                request.as_ptr().cast(),
                request.len(),
                0,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; 16384];
        // Safety: `buf` is a writable buffer of the length passed.
        let received =
            unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if received < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(received as usize);
        let kind = buf.get(4..6).map(|k| u16::from_ne_bytes([k[0], k[1]]));
        if kind == Some(NLMSG_ERROR) {
            let errno = buf
                .get(16..20)
                .map_or(0, |e| i32::from_ne_bytes([e[0], e[1], e[2], e[3]]));
            return Err(io::Error::from_raw_os_error(-errno));
        }
        Ok(buf)
    }
}
