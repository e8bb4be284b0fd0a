//! Handing a frame to the engine that owns it (DESIGN.md "Per-core model").
//!
//! With N queues there are N engines, and the device chooses the queue: a veth
//! queue follows the sender's TX queue, a NIC's follows its RSS hash. A segment
//! can therefore reach an engine that does not hold its connection (the kernel
//! peer re-picked its TX queue after a timeout, or the reply to our active open
//! hashed elsewhere). Such a frame is copied into a buffer from a shared pool and
//! pushed on the owner's lock-free inbox (`crossbeam_queue::ArrayQueue`); the
//! owner drains its inbox every iteration, before its own RX burst is processed
//! further.
//!
//! Who is the owner:
//! - a destination port inside the ephemeral range belongs to the core whose slice
//!   holds it (active opens take ports from their own core's slice), so replies to
//!   our connects go there in one hop;
//! - otherwise (passive connections, whose SYN chose the core) the frame visits the
//!   other cores in turn; a bitmask of the engines that looked carries with it,
//!   and the last engine answers as for an unknown segment (RST, or ICMP port
//!   unreachable for UDP). With two queues that is exactly one hop.
//!
//! ARP frames for us are copied to every other engine (learn only), so each
//! engine's neighbour cache hears the replies that landed on another queue.
//!
//! Nothing here allocates after set-up: buffers go back to the pool once the
//! owner has handled them. A full inbox or an empty pool drops the frame and
//! counts it (`forward_dropped`).

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use crate::errno::Errno;

/// Most engines a mesh joins (the visited set is a 64-bit mask).
pub const MAX_CORES: usize = 64;

/// A frame in flight between engines.
#[derive(Debug)]
pub(crate) struct ForwardedFrame {
    /// Engines that have looked at it (bit per core).
    pub(crate) visited: u64,
    /// A copy for information only (ARP): learn from it, answer nothing.
    pub(crate) learn_only: bool,
    /// The frame's bytes (`len()` is the frame length).
    pub(crate) bytes: Vec<u8>,
}

/// The inboxes and the buffer pool shared by the engines of one stack.
#[derive(Debug)]
pub struct ForwardMesh {
    inboxes: Vec<ArrayQueue<ForwardedFrame>>,
    pool: ArrayQueue<Vec<u8>>,
    buffer_len: usize,
}

impl ForwardMesh {
    /// A mesh for `cores` engines: each inbox holds `depth` frames, and `buffers`
    /// buffers of `buffer_len` bytes (the largest frame: MTU + Ethernet and VLAN
    /// headers) are allocated now, once. EINVAL for 0 or more than
    /// [`MAX_CORES`] cores, a zero depth or buffer count.
    pub fn new(
        cores: usize,
        depth: usize,
        buffers: usize,
        buffer_len: usize,
    ) -> Result<Arc<Self>, Errno> {
        if cores == 0 || cores > MAX_CORES || depth == 0 || buffers == 0 || buffer_len == 0 {
            return Err(Errno::EINVAL);
        }
        let pool = ArrayQueue::new(buffers);
        for _ in 0..buffers {
            // Cannot fail: the queue was made for exactly this many.
            let _ = pool.push(Vec::with_capacity(buffer_len));
        }
        Ok(Arc::new(ForwardMesh {
            inboxes: (0..cores).map(|_| ArrayQueue::new(depth)).collect(),
            pool,
            buffer_len,
        }))
    }

    /// The number of engines the mesh joins.
    pub fn cores(&self) -> usize {
        self.inboxes.len()
    }

    /// Buffers free in the pool now (all of them when nothing is in flight).
    pub fn free_buffers(&self) -> usize {
        self.pool.len()
    }

    /// Copies `frame` onto `target`'s inbox. False (and nothing queued) when the
    /// frame is larger than a buffer, no buffer is free, or the inbox is full.
    pub(crate) fn push(&self, target: usize, frame: &[u8], visited: u64, learn_only: bool) -> bool {
        let Some(inbox) = self.inboxes.get(target) else {
            return false;
        };
        if frame.len() > self.buffer_len {
            return false;
        }
        let Some(mut bytes) = self.pool.pop() else {
            return false;
        };
        bytes.clear();
        bytes.extend_from_slice(frame);
        match inbox.push(ForwardedFrame {
            visited,
            learn_only,
            bytes,
        }) {
            Ok(()) => true,
            Err(back) => {
                self.recycle(back.bytes);
                false
            }
        }
    }

    /// Whether frames wait in `core`'s inbox.
    pub(crate) fn has_frames_for(&self, core: usize) -> bool {
        self.inboxes
            .get(core)
            .is_some_and(|inbox| !inbox.is_empty())
    }

    /// The next frame for `core`, if any.
    pub(crate) fn pop(&self, core: usize) -> Option<ForwardedFrame> {
        self.inboxes.get(core)?.pop()
    }

    /// Gives a buffer back to the pool.
    pub(crate) fn recycle(&self, bytes: Vec<u8>) {
        // The pool was sized for every buffer, so this cannot overflow.
        let _ = self.pool.push(bytes);
    }
}

/// One engine's place in a mesh.
#[derive(Debug, Clone)]
pub(crate) struct Forwarding {
    pub(crate) mesh: Arc<ForwardMesh>,
    pub(crate) core: usize,
}

impl Forwarding {
    /// The bit of this engine in a visited mask.
    pub(crate) fn own_bit(&self) -> u64 {
        1u64 << self.core
    }

    /// The engine a frame that missed here should try next: the owner of
    /// `ephemeral_owner` if it has not looked yet, else the next core (in ring
    /// order) that has not; `None` when every engine has looked.
    pub(crate) fn next_hop(&self, visited: u64, ephemeral_owner: Option<usize>) -> Option<usize> {
        let cores = self.mesh.cores();
        let visited = visited | self.own_bit();
        if let Some(owner) = ephemeral_owner.filter(|o| *o < cores) {
            if visited & (1u64 << owner) == 0 {
                return Some(owner);
            }
        }
        (1..cores)
            .map(|step| (self.core + step) % cores)
            .find(|k| visited & (1u64 << k) == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesh_rejects_impossible_shapes() {
        assert_eq!(ForwardMesh::new(0, 4, 4, 64).err(), Some(Errno::EINVAL));
        assert_eq!(ForwardMesh::new(65, 4, 4, 64).err(), Some(Errno::EINVAL));
        assert_eq!(ForwardMesh::new(2, 0, 4, 64).err(), Some(Errno::EINVAL));
        assert_eq!(ForwardMesh::new(2, 4, 0, 64).err(), Some(Errno::EINVAL));
    }

    #[test]
    fn frames_travel_and_buffers_come_back() {
        let mesh = ForwardMesh::new(2, 2, 3, 16).unwrap();
        assert!(mesh.push(1, b"hello", 0b01, false));
        assert!(mesh.push(1, b"world", 0b01, true));
        // Inbox depth 2: the third is refused and its buffer returned.
        assert!(!mesh.push(1, b"third", 0b01, false));
        assert_eq!(mesh.free_buffers(), 1);
        // Larger than a buffer: refused without taking one.
        assert!(!mesh.push(0, &[0u8; 17], 0b10, false));
        assert!(!mesh.push(7, b"x", 0, false), "no such core");
        let first = mesh.pop(1).unwrap();
        assert_eq!(
            (first.bytes.as_slice(), first.visited),
            (&b"hello"[..], 0b01)
        );
        assert!(!first.learn_only);
        mesh.recycle(first.bytes);
        let second = mesh.pop(1).unwrap();
        assert!(second.learn_only);
        mesh.recycle(second.bytes);
        assert!(mesh.pop(1).is_none());
        assert_eq!(mesh.free_buffers(), 3);
    }

    #[test]
    fn next_hop_prefers_the_port_owner_then_walks_the_ring() {
        let mesh = ForwardMesh::new(4, 1, 1, 16).unwrap();
        let f = Forwarding { mesh, core: 1 };
        assert_eq!(f.next_hop(0, Some(3)), Some(3));
        assert_eq!(f.next_hop(0, Some(1)), Some(2), "we are the owner: ring");
        assert_eq!(f.next_hop(0, None), Some(2));
        assert_eq!(f.next_hop(0b0100, None), Some(3));
        assert_eq!(f.next_hop(0b1100, Some(3)), Some(0));
        assert_eq!(f.next_hop(0b1101, None), None, "everyone looked");
    }
}
