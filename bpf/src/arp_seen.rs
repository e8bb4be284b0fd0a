//! [`ArpSeen`]: the consumer side of the steering program's `arp_seen` ring.
//!
//! XDP can pass a frame to the kernel or redirect it to surge, not both. ARP
//! frames that are not for one of surge's own addresses (a neighbour's
//! gratuitous ARP, its request for another host, ARP for an address surge
//! shares with the kernel) go to the kernel; RFC 826 still asks every host that
//! sees one to merge the sender into its cache if it knows it. The program puts
//! a copy of each such frame's first 42 bytes (Ethernet + ARP) in a BPF ring
//! buffer (`BPF_MAP_TYPE_RINGBUF`), and an engine drains it with
//! [`ArpSeen::drain`]: two loads when nothing came, no system call.
//!
//! The ring's user-space protocol (as libbpf's `ring_buffer__consume`): a
//! read-write page holding the consumer position, then a read-only page with
//! the producer position followed by the data, mapped twice in a row so a
//! record never wraps. Each record starts with an 8-byte header whose first
//! word is its length, with a busy bit (still being written) and a discard bit.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::BpfError;

const BUSY_BIT: u32 = 1 << 31;
const DISCARD_BIT: u32 = 1 << 30;
const HEADER: u64 = 8;

/// The consumer of the `arp_seen` ring (one per program; it keeps the map
/// open on its own, so it outlives the program's other handles).
#[derive(Debug)]
pub struct ArpSeen {
    /// The map, kept open while mapped.
    _fd: OwnedFd,
    consumer: *mut u8,
    producer: *mut u8,
    page: usize,
    size: usize,
    /// Records handed out.
    delivered: u64,
}

// Safety: the mappings are owned by this value alone (nothing else in the
// process reads or writes the consumer position), so moving it to another
// thread moves the only user; the kernel writes its side with atomics.
unsafe impl Send for ArpSeen {}

impl ArpSeen {
    /// Maps the ring `map` (a `BPF_MAP_TYPE_RINGBUF` of `size` data bytes, a
    /// power of two and a multiple of the page size).
    pub(crate) fn open(map: impl AsFd, size: usize) -> Result<Self, BpfError> {
        let err = |what: &'static str| BpfError::Map {
            what,
            source: libbpf_rs::Error::from(std::io::Error::last_os_error()),
        };
        let fd = map
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| BpfError::Map {
                what: "duplicating the arp_seen ring's descriptor",
                source: e.into(),
            })?;
        // Safety: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        if !size.is_power_of_two() || size % page != 0 {
            return Err(BpfError::BadConfig(format!(
                "arp_seen ring of {size} bytes: not a power of two of pages"
            )));
        }
        // Safety: a fresh shared mapping of the map's first page (the consumer
        // position), which the kernel allows read-write for a ring buffer.
        let consumer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if consumer == libc::MAP_FAILED {
            return Err(err("mapping the arp_seen ring's consumer page"));
        }
        // Safety: the producer page and the data mapped twice, read-only, at
        // the offset the kernel expects (one page).
        let producer = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                page + 2 * size,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                libc::off_t::try_from(page).unwrap_or(4096),
            )
        };
        if producer == libc::MAP_FAILED {
            let e = err("mapping the arp_seen ring's data");
            // Safety: unmapping what was mapped above.
            unsafe { libc::munmap(consumer, page) };
            return Err(e);
        }
        Ok(ArpSeen {
            _fd: fd,
            consumer: consumer.cast(),
            producer: producer.cast(),
            page,
            size,
            delivered: 0,
        })
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // Safety: the first word of the consumer page, 8-byte aligned (page
        // aligned), mapped for the life of `self`.
        unsafe { &*self.consumer.cast::<AtomicU64>() }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // Safety: as above, for the producer page.
        unsafe { &*self.producer.cast::<AtomicU64>() }
    }

    /// Hands every complete record to `f` (the first 42 bytes of an ARP
    /// frame the kernel got), oldest first, and frees their room; returns how
    /// many. A record still being written ends the pass.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let mask = self.size as u64 - 1;
        let mut cons = self.consumer_pos().load(Ordering::Acquire);
        let prod = self.producer_pos().load(Ordering::Acquire);
        let mut n = 0;
        while cons < prod {
            let offset = usize::try_from(cons & mask).unwrap_or(0);
            // Safety: `offset` < size, and the data (mapped twice) spans
            // 2 x size bytes after the producer page, so the header and a
            // record of at most size bytes starting there are mapped; the
            // header is 8-byte aligned (records are rounded to 8).
            let header = unsafe { &*self.producer.add(self.page + offset).cast::<AtomicU32>() };
            let word = header.load(Ordering::Acquire);
            if word & BUSY_BIT != 0 {
                break;
            }
            let len = word & !(BUSY_BIT | DISCARD_BIT);
            let total = (u64::from(len) + HEADER + 7) & !7;
            if u64::from(len) + HEADER <= self.size as u64 && word & DISCARD_BIT == 0 {
                // Safety: the record's bytes lie within the double mapping
                // (len + 8 <= size, offset < size).
                let data = unsafe {
                    std::slice::from_raw_parts(
                        self.producer.add(self.page + offset + HEADER as usize),
                        len as usize,
                    )
                };
                f(data);
                n += 1;
            }
            cons += total;
            self.consumer_pos().store(cons, Ordering::Release);
        }
        self.delivered += n as u64;
        n
    }

    /// Records handed out by [`ArpSeen::drain`] so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }
}

impl Drop for ArpSeen {
    fn drop(&mut self) {
        // Safety: both mappings were made in `open` with these sizes and are
        // not used after this.
        unsafe {
            libc::munmap(self.consumer.cast(), self.page);
            libc::munmap(self.producer.cast(), self.page + 2 * self.size);
        }
    }
}
