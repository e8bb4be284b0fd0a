//! The socket table of one engine: a slab of sockets addressed by
//! generation-checked handles, so a closed or foreign handle is `EBADF`, never
//! another socket (the role of the file-descriptor table in front of `socreate`).

use crate::Errno;
use crate::table::SocketId;

/// A handle to one socket of one engine.
///
/// Carries the engine's identity (so a handle from another stack is refused),
/// the owning core, the slot, and the slot's generation (so a reused slot does
/// not answer to an old handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketHandle {
    stack: u32,
    core: u16,
    index: u32,
    generation: u32,
}

impl SocketHandle {
    /// The core whose engine owns the socket.
    pub const fn core(&self) -> u16 {
        self.core
    }

    /// The identity of the stack (engine group) the handle belongs to.
    pub const fn stack(&self) -> u32 {
        self.stack
    }

    /// The slot index, as the tables know the socket.
    pub const fn id(&self) -> SocketId {
        SocketId(self.index)
    }
}

impl core::fmt::Display for SocketHandle {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "sock{}.{}@core{}",
            self.index, self.generation, self.core
        )
    }
}

/// One slot of the slab: the value, then the generation a handle must carry.
///
/// `repr(C)` and aligned to a cache line, so that what every segment, socket call
/// and event reads of a TCP socket, its first 128 bytes, is two lines and not parts
/// of four (see [`crate::socket::TcpSock`]). A slot of 240 bytes became 256. (The
/// generation first would put it in the first line too, one line fewer for a call by
/// handle, but the value then sits 8 bytes into the slot, and the frame loop, which
/// keeps the socket across the segment's input, took 10 more instructions a segment
/// to address it.)
#[derive(Debug)]
#[repr(C, align(64))]
struct Slot<T> {
    value: Option<T>,
    generation: u32,
}

/// Slots per chunk of the slab (a power of two).
const CHUNK_SLOTS: usize = 1024;

/// A chunk of free slots, built on the heap (a chunk of large sockets would not fit
/// on the stack).
fn new_chunk<T>() -> Box<[Slot<T>; CHUNK_SLOTS]> {
    let slots: Box<[Slot<T>]> = (0..CHUNK_SLOTS)
        .map(|_| Slot {
            generation: 0,
            value: None,
        })
        .collect();
    match slots.try_into() {
        Ok(chunk) => chunk,
        // The iterator yields exactly CHUNK_SLOTS slots.
        Err(_) => unreachable!("a chunk has CHUNK_SLOTS slots"),
    }
}

/// A bounded slab of sockets.
///
/// The slots live in fixed chunks of 1,024 slots, allocated as the set grows: growing
/// never moves the sockets already held (no reallocation and copy of the whole table, which
/// at a million sockets would be a pause of hundreds of megabytes), and at most one chunk
/// stands unused.
#[derive(Debug)]
pub struct SocketSet<T> {
    stack: u32,
    core: u16,
    /// Fixed-size chunks: an index within a chunk needs no bounds check.
    chunks: Vec<Box<[Slot<T>; CHUNK_SLOTS]>>,
    /// Slots ever handed out: indexes below this exist.
    slots: usize,
    free: Vec<u32>,
    len: usize,
    capacity: usize,
}

impl<T> SocketSet<T> {
    /// An empty set for engine `stack` on `core`, holding at most `capacity` sockets.
    pub fn new(stack: u32, core: u16, capacity: usize) -> Self {
        SocketSet {
            stack,
            core,
            chunks: Vec::new(),
            slots: 0,
            free: Vec::new(),
            len: 0,
            capacity,
        }
    }

    /// Number of live sockets.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no socket is live.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most sockets held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds a socket. `EMFILE` when the set is full (as `socket(2)` at the fd limit).
    pub fn insert(&mut self, value: T) -> Result<SocketHandle, Errno> {
        if self.len >= self.capacity {
            return Err(Errno::EMFILE);
        }
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.slots).map_err(|_| Errno::EMFILE)?;
                if self.slots == self.chunks.len() * CHUNK_SLOTS {
                    self.chunks.push(new_chunk());
                }
                self.slots += 1;
                i
            }
        };
        let slot = self.slot_mut(index as usize).ok_or(Errno::EMFILE)?;
        slot.value = Some(value);
        let generation = slot.generation;
        self.len += 1;
        Ok(SocketHandle {
            stack: self.stack,
            core: self.core,
            index,
            generation,
        })
    }

    // The slots of an allocated chunk beyond `slots` were never handed out: they hold
    // no value, so every lookup below answers for them as for a free slot, without
    // comparing with `slots` first.
    #[inline]
    fn slot(&self, i: usize) -> Option<&Slot<T>> {
        self.chunks
            .get(i / CHUNK_SLOTS)
            .map(|chunk| &chunk[i % CHUNK_SLOTS])
    }

    #[inline]
    fn slot_mut(&mut self, i: usize) -> Option<&mut Slot<T>> {
        self.chunks
            .get_mut(i / CHUNK_SLOTS)
            .map(|chunk| &mut chunk[i % CHUNK_SLOTS])
    }

    /// The slot `handle` names, if it is of this set and of the slot's generation
    /// (live or not).
    #[inline]
    fn slot_of(&self, handle: SocketHandle) -> Option<&Slot<T>> {
        if handle.stack != self.stack || handle.core != self.core {
            return None;
        }
        self.slot(handle.index as usize)
            .filter(|slot| slot.generation == handle.generation)
    }

    /// [`Self::slot_of`], mutably.
    #[inline]
    fn slot_of_mut(&mut self, handle: SocketHandle) -> Option<&mut Slot<T>> {
        if handle.stack != self.stack || handle.core != self.core {
            return None;
        }
        self.slot_mut(handle.index as usize)
            .filter(|slot| slot.generation == handle.generation)
    }

    /// The socket behind `handle`, or `EBADF`.
    #[inline]
    pub fn get(&self, handle: SocketHandle) -> Result<&T, Errno> {
        self.slot_of(handle)
            .and_then(|s| s.value.as_ref())
            .ok_or(Errno::EBADF)
    }

    /// The socket behind `handle`, mutably, or `EBADF`.
    #[inline]
    pub fn get_mut(&mut self, handle: SocketHandle) -> Result<&mut T, Errno> {
        self.slot_of_mut(handle)
            .and_then(|s| s.value.as_mut())
            .ok_or(Errno::EBADF)
    }

    /// The socket in slot `id` (as the tables know it), whatever its generation.
    pub fn by_id(&self, id: SocketId) -> Option<&T> {
        self.slot(id.0 as usize).and_then(|s| s.value.as_ref())
    }

    /// Prefetches slot `id` (see [`surge_datapath::prefetch`]).
    pub fn prefetch(&self, id: SocketId) {
        if let Some(slot) = self.slot(id.0 as usize) {
            surge_datapath::prefetch::prefetch_lines(
                slot,
                core::mem::size_of::<Slot<T>>().div_ceil(64),
            );
        }
    }

    /// Mutable access by slot id.
    pub fn by_id_mut(&mut self, id: SocketId) -> Option<&mut T> {
        self.slot_mut(id.0 as usize).and_then(|s| s.value.as_mut())
    }

    /// The socket in slot `id`, mutably, with its current handle ([`Self::by_id_mut`] and
    /// [`Self::handle_of`] on one lookup).
    pub fn by_id_with_handle_mut(&mut self, id: SocketId) -> Option<(SocketHandle, &mut T)> {
        let (stack, core) = (self.stack, self.core);
        let slot = self.slot_mut(id.0 as usize)?;
        let handle = SocketHandle {
            stack,
            core,
            index: id.0,
            generation: slot.generation,
        };
        Some((handle, slot.value.as_mut()?))
    }

    /// The current handle of slot `id`, if live.
    pub fn handle_of(&self, id: SocketId) -> Option<SocketHandle> {
        let slot = self.slot(id.0 as usize)?;
        slot.value.as_ref()?;
        Some(SocketHandle {
            stack: self.stack,
            core: self.core,
            index: id.0,
            generation: slot.generation,
        })
    }

    /// Removes the socket in slot `id`; its handles become `EBADF`.
    pub fn remove_id(&mut self, id: SocketId) -> Option<T> {
        let slot = self.slot_mut(id.0 as usize)?;
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.0);
        self.len -= 1;
        Some(value)
    }

    /// Removes the socket behind `handle`, or `EBADF`.
    pub fn remove(&mut self, handle: SocketHandle) -> Result<T, Errno> {
        self.get(handle)?;
        self.remove_id(handle.id()).ok_or(Errno::EBADF)
    }

    /// Live sockets with their slot ids.
    pub fn iter(&self) -> impl Iterator<Item = (SocketId, &T)> {
        self.chunks
            .iter()
            .flat_map(|chunk| chunk.iter())
            .take(self.slots)
            .enumerate()
            .filter_map(|(i, s)| s.value.as_ref().map(|v| (SocketId(i as u32), v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tcp_sockets_hot_fields_fill_the_first_two_lines_of_an_aligned_slot() {
        use crate::engine::Socket;
        use crate::socket::TcpSock;
        use core::mem::{align_of, offset_of, size_of};
        // Slots start on cache lines, every one of them.
        assert_eq!(align_of::<Slot<Socket>>(), 64);
        assert_eq!(size_of::<Slot<Socket>>() % 64, 0);
        // What every segment, socket call and event reads lies in the first 128 bytes
        // (the value leads the slot); the options come after.
        assert_eq!(offset_of!(Slot<Socket>, value), 0);
        let sock = Socket::Tcp(TcpSock::new());
        let Socket::Tcp(inner) = &sock else {
            unreachable!("built as TCP")
        };
        // Where the compiler put the TCP socket inside `Socket` (at its start, the
        // variant's tag being a niche of the socket's fields).
        let at = core::ptr::from_ref(inner) as usize - core::ptr::from_ref(&sock) as usize;
        let hot_end = at + offset_of!(TcpSock, due) + size_of::<Option<crate::time::Instant>>();
        assert!(hot_end <= 128, "hot fields end at {hot_end}");
        for hot in [
            offset_of!(TcpSock, state),
            offset_of!(TcpSock, ready),
            offset_of!(TcpSock, orphan),
            offset_of!(TcpSock, dirty),
            offset_of!(TcpSock, parent),
            offset_of!(TcpSock, timer),
        ] {
            assert!(hot < offset_of!(TcpSock, options), "{hot}");
        }
    }

    #[test]
    fn closed_handles_are_ebadf_even_after_slot_reuse() {
        let mut set = SocketSet::new(7, 0, 4);
        let a = set.insert("a").expect("room");
        assert_eq!(set.remove(a), Ok("a"));
        assert_eq!(set.get(a), Err(Errno::EBADF));
        let b = set.insert("b").expect("room");
        assert_eq!(a.id(), b.id(), "the slot is reused");
        assert_eq!(
            set.get(a),
            Err(Errno::EBADF),
            "the old handle must not reach the new socket"
        );
        assert_eq!(set.get(b), Ok(&"b"));
        assert_eq!(set.remove(a), Err(Errno::EBADF));
    }

    #[test]
    fn handles_from_another_stack_or_core_are_ebadf() {
        let mut one = SocketSet::new(1, 0, 4);
        let mut two = SocketSet::new(2, 0, 4);
        let mut other_core = SocketSet::new(1, 1, 4);
        let h = one.insert(1).expect("room");
        two.insert(2).expect("room");
        other_core.insert(3).expect("room");
        assert_eq!(two.get(h), Err(Errno::EBADF));
        assert_eq!(other_core.get(h), Err(Errno::EBADF));
    }

    #[test]
    fn full_set_is_emfile_and_keeps_what_it_holds() {
        let mut set = SocketSet::new(1, 0, 2);
        let a = set.insert(1).expect("room");
        let b = set.insert(2).expect("room");
        assert_eq!(set.insert(3), Err(Errno::EMFILE));
        assert_eq!((set.get(a), set.get(b)), (Ok(&1), Ok(&2)));
        set.remove(a).expect("live");
        assert!(set.insert(4).is_ok());
        assert_eq!(set.len(), 2);
        assert_eq!(set.iter().count(), 2);
    }

    #[test]
    fn slots_never_handed_out_are_ebadf() {
        // The first chunk holds 1,024 slots; only one was handed out. A handle to any
        // other (forged, or from a set of the same identity) finds nothing.
        let mut set = SocketSet::new(1, 0, 8);
        let h = set.insert('x').expect("room");
        for index in [1, 2, CHUNK_SLOTS as u32 - 1, CHUNK_SLOTS as u32, u32::MAX] {
            let forged = SocketHandle { index, ..h };
            assert_eq!(set.get(forged), Err(Errno::EBADF), "slot {index}");
            assert_eq!(set.get_mut(forged), Err(Errno::EBADF), "slot {index}");
            assert_eq!(set.remove(forged), Err(Errno::EBADF), "slot {index}");
            assert_eq!(set.by_id(forged.id()), None);
            assert_eq!(set.handle_of(forged.id()), None);
        }
        let stale = SocketHandle { generation: 1, ..h };
        assert_eq!(set.get(stale), Err(Errno::EBADF), "another generation");
        assert_eq!(set.len(), 1);
        assert_eq!(set.get(h), Ok(&'x'));
    }

    #[test]
    fn ids_map_back_to_current_handles() {
        let mut set = SocketSet::new(1, 3, 8);
        let h = set.insert('x').expect("room");
        assert_eq!(h.core(), 3);
        assert_eq!(set.handle_of(h.id()), Some(h));
        assert_eq!(set.by_id(h.id()), Some(&'x'));
        set.remove_id(h.id());
        assert_eq!(set.handle_of(h.id()), None);
        assert_eq!(set.by_id(h.id()), None);
    }

    #[test]
    fn sockets_keep_their_slots_across_chunks() {
        let n = 2 * CHUNK_SLOTS + 3;
        let mut set = SocketSet::new(1, 0, n);
        let handles: Vec<_> = (0..n).map(|i| set.insert(i).expect("room")).collect();
        assert_eq!(set.insert(n), Err(Errno::EMFILE));
        for (i, h) in handles.iter().enumerate() {
            assert_eq!(set.get(*h), Ok(&i));
        }
        assert_eq!(set.iter().count(), n);
        let last = handles[n - 1];
        set.remove(last).expect("live");
        assert_eq!(set.by_id(last.id()), None);
        let again = set.insert(7).expect("room");
        assert_eq!(again.id(), last.id(), "the freed slot is reused");
        assert_eq!(set.get(last), Err(Errno::EBADF));
    }
}
