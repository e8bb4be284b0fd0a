//! Questions about a network interface, asked in the calling thread's network
//! namespace (ioctls on a socket, not `/sys`, which shows the namespace sysfs
//! was mounted in).

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

use crate::DatapathError;

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GCHANNELS: u32 = 0x3c;

/// `struct ethtool_channels` of `linux/ethtool.h`.
#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// An interface by name and index, in the namespace it was looked up in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Interface name.
    pub name: String,
    /// Interface index.
    pub index: u32,
}

impl Interface {
    /// Looks an interface up by name in the calling thread's network namespace.
    pub fn lookup(name: &str) -> Result<Self, DatapathError> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', ' ', '\0']) {
            return Err(DatapathError::BadInterfaceName(name.to_owned()));
        }
        let c_name =
            CString::new(name).map_err(|_| DatapathError::BadInterfaceName(name.to_owned()))?;
        // Safety: `c_name` is a valid NUL-terminated string that outlives the call.
        let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if index == 0 {
            return Err(DatapathError::NoSuchInterface(name.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            index,
        })
    }

    /// The interface MTU.
    pub fn mtu(&self) -> Result<u32, DatapathError> {
        let mut req = self.ifreq();
        ioctl(libc::SIOCGIFMTU, &mut req).map_err(|source| DatapathError::Syscall {
            what: "reading the interface MTU",
            source,
        })?;
        // Safety: SIOCGIFMTU filled the `mtu` member of the union.
        let mtu = unsafe { req.ifr_ifru.ifru_mtu };
        Ok(mtu.max(0) as u32)
    }

    /// The interface's hardware (MAC) address.
    pub fn mac(&self) -> Result<[u8; 6], DatapathError> {
        let mut req = self.ifreq();
        ioctl(libc::SIOCGIFHWADDR, &mut req).map_err(|source| DatapathError::Syscall {
            what: "reading the interface MAC address",
            source,
        })?;
        // Safety: SIOCGIFHWADDR filled the `hwaddr` member of the union.
        let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
        let mut mac = [0u8; 6];
        for (byte, raw) in mac.iter_mut().zip(hw.sa_data.iter()) {
            *byte = *raw as u8;
        }
        Ok(mac)
    }

    /// Number of RX queues (`ethtool -l`: RX or combined channels, whichever is larger).
    pub fn rx_queues(&self) -> Result<u32, DatapathError> {
        let mut channels = EthtoolChannels {
            cmd: ETHTOOL_GCHANNELS,
            ..Default::default()
        };
        let mut req = self.ifreq();
        req.ifr_ifru.ifru_data = (&raw mut channels).cast();
        match ioctl(SIOCETHTOOL, &mut req) {
            Ok(()) => Ok(channels.rx_count.max(channels.combined_count).max(1)),
            // A driver without channel reporting has one queue.
            Err(err) if err.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(1),
            Err(source) => Err(DatapathError::Syscall {
                what: "reading the interface channels (ETHTOOL_GCHANNELS)",
                source,
            }),
        }
    }

    /// The XDP / AF_XDP features the driver advertises (`netdev` netlink);
    /// `None` on kernels without that family (before 6.3).
    pub fn xdp_features(&self) -> Result<Option<crate::XdpFeatures>, DatapathError> {
        crate::netdev::query(self.index).map_err(|source| DatapathError::Syscall {
            what: "asking the netdev netlink family for XDP features",
            source,
        })
    }

    /// Checks that `queue` exists on this interface.
    pub fn check_queue(&self, queue: u32) -> Result<u32, DatapathError> {
        let available = self.rx_queues()?;
        if queue >= available {
            return Err(DatapathError::TooManyQueues {
                ifname: self.name.clone(),
                requested: queue,
                available,
            });
        }
        Ok(available)
    }

    fn ifreq(&self) -> libc::ifreq {
        // Safety: `ifreq` is plain old data; all-zero is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in req.ifr_name.iter_mut().zip(self.name.bytes()) {
            *dst = src as libc::c_char;
        }
        req
    }
}

fn ioctl(request: libc::c_ulong, req: &mut libc::ifreq) -> io::Result<()> {
    // Safety: plain socket creation; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // Safety: `fd` is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Safety: `req` is a valid, exclusively borrowed `ifreq` (and any buffer it
    // points to is alive for the call), as the interface ioctls expect.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, req as *mut libc::ifreq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_exists_and_has_one_queue_and_a_big_mtu() {
        let lo = Interface::lookup("lo").unwrap();
        assert!(lo.index >= 1);
        assert!(lo.mtu().unwrap() >= 1500);
        assert_eq!(lo.rx_queues().unwrap(), 1);
        assert!(matches!(
            lo.check_queue(1),
            Err(DatapathError::TooManyQueues { available: 1, .. })
        ));
        let features = lo
            .xdp_features()
            .unwrap()
            .expect("this kernel has the netdev family");
        assert_eq!(
            features,
            crate::XdpFeatures::default(),
            "loopback: no zero-copy, no TX metadata"
        );
    }

    #[test]
    fn missing_and_malformed_names_are_clear_errors() {
        assert!(matches!(
            Interface::lookup("surge-nope0"),
            Err(DatapathError::NoSuchInterface(_))
        ));
        assert!(matches!(
            Interface::lookup(""),
            Err(DatapathError::BadInterfaceName(_))
        ));
        assert!(matches!(
            Interface::lookup("a-very-long-interface-name"),
            Err(DatapathError::BadInterfaceName(_))
        ));
    }
}
