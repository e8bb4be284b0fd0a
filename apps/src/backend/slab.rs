//! [`SocketSlab`]: a worker's sockets by [`SocketId`], ids reused as file descriptors are.
//!
//! A freed id is handed out again by the next insert, so the ids stay below the number of
//! sockets open at once. The apps index their own per-connection state by id (`surge
//! serve` keeps a `Vec` of connections, `surge load` a map from id to connection): with
//! ids that only grow, that state grew with every connection ever accepted, and a server
//! under `Connection: close` load walked all of it on every loop.

use super::SocketId;

/// Values indexed by small, reused socket ids.
#[derive(Debug)]
pub struct SocketSlab<T> {
    entries: Vec<Option<T>>,
    /// Freed ids, the most recently freed last (reused first: its memory is warm).
    free: Vec<SocketId>,
}

impl<T> Default for SocketSlab<T> {
    fn default() -> Self {
        SocketSlab {
            entries: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> SocketSlab<T> {
    /// Stores `value` under a free id (the most recently freed one, else a new one).
    pub fn insert(&mut self, value: T) -> SocketId {
        while let Some(id) = self.free.pop() {
            if let Some(slot @ None) = self.entries.get_mut(id) {
                *slot = Some(value);
                return id;
            }
        }
        self.entries.push(Some(value));
        self.entries.len() - 1
    }

    /// The value under `id`.
    pub fn get(&self, id: SocketId) -> Option<&T> {
        self.entries.get(id).and_then(Option::as_ref)
    }

    /// The value under `id`, mutably.
    pub fn get_mut(&mut self, id: SocketId) -> Option<&mut T> {
        self.entries.get_mut(id).and_then(Option::as_mut)
    }

    /// Takes the value out; its id is free for the next insert.
    pub fn remove(&mut self, id: SocketId) -> Option<T> {
        let value = self.entries.get_mut(id).and_then(Option::take)?;
        self.free.push(id);
        Some(value)
    }

    /// Takes every value out (all ids become free).
    pub fn take_all(&mut self) -> Vec<T> {
        self.free.clear();
        self.entries.drain(..).flatten().collect()
    }

    /// How many values are stored.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len() - self.free.len()
    }

    /// True when nothing is stored.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One more than the highest id handed out so far (ids are below it).
    #[cfg(test)]
    pub fn id_bound(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_id_is_reused_by_the_next_insert() {
        let mut slab = SocketSlab::default();
        let a = slab.insert("a");
        let b = slab.insert("b");
        assert_ne!(a, b);
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.insert("c"), a, "the freed id comes back");
        assert_eq!(slab.get(a), Some(&"c"));
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.len(), 2);
    }

    #[test]
    fn ids_stay_below_the_most_sockets_open_at_once() {
        // A server under `Connection: close`: 100,000 connections, at most 50 open.
        let mut slab = SocketSlab::default();
        let listener = slab.insert(0usize);
        let mut open = std::collections::VecDeque::new();
        for n in 1..=100_000usize {
            if open.len() == 50 {
                let id = open.pop_front().unwrap();
                assert!(slab.remove(id).is_some());
            }
            open.push_back(slab.insert(n));
        }
        assert_eq!(slab.len(), 51);
        assert!(slab.id_bound() <= 51, "ids reached {}", slab.id_bound());
        assert_eq!(slab.get(listener), Some(&0));
    }

    #[test]
    fn removing_twice_or_an_unknown_id_frees_nothing() {
        let mut slab = SocketSlab::default();
        let a = slab.insert(1);
        assert_eq!(slab.remove(a), Some(1));
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.remove(99), None);
        let b = slab.insert(2);
        let c = slab.insert(3);
        assert_eq!(b, a);
        assert_ne!(c, a, "a double remove must not hand the id out twice");
        assert_eq!(slab.len(), 2);
    }

    #[test]
    fn take_all_empties_it() {
        let mut slab = SocketSlab::default();
        let a = slab.insert(1);
        slab.insert(2);
        slab.remove(a);
        let mut all = slab.take_all();
        all.sort_unstable();
        assert_eq!(all, vec![2]);
        assert!(slab.is_empty());
        assert_eq!(slab.insert(5), 0);
    }
}
