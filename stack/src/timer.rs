//! The engine's timer wheel: a hierarchical timing wheel (Varghese & Lauck) with O(1)
//! insert and cancel by handle, expiry by [`TimerWheel::advance`], and a fixed capacity
//! allocated up front.
//!
//! Six levels of 64 slots cover 2^36 ticks (about two years at 1 ms ticks). An entry sits at
//! the level of the highest 6-bit digit in which its deadline differs from the wheel's clock
//! and cascades down as the clock approaches. Entries never fire early: an entry with
//! deadline `d` fires in the first `advance(now)` with `now >= d`, rounded up to a tick.
//!
//! ```
//! use core::time::Duration;
//! use surge_stack::time::Instant;
//! use surge_stack::timer::TimerWheel;
//!
//! let mut wheel = TimerWheel::new(Instant::ZERO, Duration::from_millis(1), 1024);
//! let a = wheel.insert(Instant::from_millis(40), "delayed ack").unwrap();
//! wheel.insert(Instant::from_millis(200), "rto").unwrap();
//! assert_eq!(wheel.cancel(a), Some("delayed ack"));
//! let mut fired = Vec::new();
//! wheel.advance(Instant::from_millis(250), |_, v| fired.push(v));
//! assert_eq!(fired, ["rto"]);
//! ```

use crate::time::Instant;
use core::time::Duration;

const LEVELS: usize = 6;
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
/// Ticks the wheel spans: 64^6.
const RANGE: u64 = 1 << (SLOT_BITS as u64 * LEVELS as u64);
const NIL: u32 = u32::MAX;

/// Identifies one inserted timer; stale handles (fired or cancelled) are recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerHandle {
    index: u32,
    generation: u32,
}

#[derive(Debug)]
struct Entry<T> {
    value: Option<T>,
    tick: u64,
    prev: u32,
    next: u32,
    generation: u32,
    level: u8,
    slot: u8,
}

/// A hierarchical timer wheel holding up to `capacity` timers with payload `T`.
#[derive(Debug)]
pub struct TimerWheel<T> {
    tick_micros: u64,
    /// The wheel's clock, in ticks: everything at or before it has been handled.
    elapsed: u64,
    /// No timer is due before this tick (a lower bound; `u64::MAX` when none is armed):
    /// an `advance` to an earlier tick returns at once, leaving the clock where it was
    /// (cascading waits for the next `advance` that has work).
    earliest: u64,
    heads: [[u32; SLOTS]; LEVELS],
    occupied: [u64; LEVELS],
    entries: Vec<Entry<T>>,
    free: u32,
    len: usize,
}

impl<T> TimerWheel<T> {
    /// A wheel whose clock starts at `now`, with ticks of `tick` (at least 1 µs) and room
    /// for `capacity` timers, allocated now.
    pub fn new(now: Instant, tick: Duration, capacity: usize) -> Self {
        let tick_micros = crate::time::duration_micros(tick).max(1);
        let capacity = capacity.min(NIL as usize - 1);
        let mut entries = Vec::with_capacity(capacity);
        for i in 0..capacity {
            let next = if i + 1 < capacity {
                (i + 1) as u32
            } else {
                NIL
            };
            entries.push(Entry {
                value: None,
                tick: 0,
                prev: NIL,
                next,
                generation: 0,
                level: 0,
                slot: 0,
            });
        }
        TimerWheel {
            tick_micros,
            elapsed: now.total_micros() / tick_micros,
            earliest: u64::MAX,
            heads: [[NIL; SLOTS]; LEVELS],
            occupied: [0; LEVELS],
            entries,
            free: if capacity > 0 { 0 } else { NIL },
            len: 0,
        }
    }

    /// Timers currently armed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Most timers the wheel holds.
    pub fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Arms a timer for `deadline`; gives the value back when the wheel is full.
    pub fn insert(&mut self, deadline: Instant, value: T) -> Result<TimerHandle, T> {
        if self.free == NIL {
            return Err(value);
        }
        let index = self.free;
        let tick = deadline.total_micros().div_ceil(self.tick_micros);
        let e = &mut self.entries[index as usize];
        self.free = e.next;
        e.value = Some(value);
        e.tick = tick;
        e.generation = e.generation.wrapping_add(1);
        let generation = e.generation;
        self.len += 1;
        self.place(index);
        Ok(TimerHandle { index, generation })
    }

    /// Disarms a timer; returns its value, or `None` if it already fired or was cancelled.
    pub fn cancel(&mut self, handle: TimerHandle) -> Option<T> {
        let e = self.entries.get(handle.index as usize)?;
        if e.generation != handle.generation || e.value.is_none() {
            return None;
        }
        self.unlink(handle.index);
        self.release(handle.index)
    }

    /// A lower bound on the next deadline (exact for timers within 64 ticks), if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let tick = (0..LEVELS)
            .filter_map(|l| self.next_slot(l).map(|(_, t)| t))
            .min()?;
        // Both are lower bounds; `advance` does nothing before `earliest`.
        let tick = tick.max(self.earliest);
        Some(Instant::from_micros(tick.saturating_mul(self.tick_micros)))
    }

    /// Moves the clock to `now` and hands every timer due by then to `on_expire`.
    pub fn advance(&mut self, now: Instant, mut on_expire: impl FnMut(TimerHandle, T)) {
        let now_tick = now.total_micros() / self.tick_micros;
        if now_tick < self.elapsed || now_tick < self.earliest {
            return;
        }
        if now_tick - self.elapsed >= RANGE {
            self.sweep(now_tick, &mut on_expire);
            self.earliest = self.first_slot_tick();
            return;
        }
        loop {
            let next = (0..LEVELS)
                .filter_map(|l| self.next_slot(l).map(|(s, t)| (t, l, s)))
                .min();
            let Some((slot_tick, level, slot)) = next else {
                break;
            };
            if slot_tick > now_tick {
                break;
            }
            self.elapsed = self.elapsed.max(slot_tick);
            let mut i = self.heads[level][slot];
            self.heads[level][slot] = NIL;
            self.occupied[level] &= !(1u64 << slot);
            while i != NIL {
                let next_i = self.entries[i as usize].next;
                if self.entries[i as usize].tick <= now_tick {
                    self.fire(i, &mut on_expire);
                } else {
                    self.place(i);
                }
                i = next_i;
            }
        }
        self.elapsed = now_tick;
        self.earliest = self.first_slot_tick();
    }

    /// The start tick of the first occupied slot (at or before every armed deadline).
    fn first_slot_tick(&self) -> u64 {
        (0..LEVELS)
            .filter_map(|l| self.next_slot(l).map(|(_, t)| t))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// A jump of more than the wheel's range: re-place everything (rare, O(n)).
    fn sweep(&mut self, now_tick: u64, on_expire: &mut impl FnMut(TimerHandle, T)) {
        self.elapsed = now_tick;
        for level in 0..LEVELS {
            for slot in 0..SLOTS {
                let mut i = self.heads[level][slot];
                self.heads[level][slot] = NIL;
                while i != NIL {
                    let next_i = self.entries[i as usize].next;
                    if self.entries[i as usize].tick <= now_tick {
                        self.fire(i, on_expire);
                    } else {
                        self.place(i);
                    }
                    i = next_i;
                }
            }
            self.occupied[level] = 0;
        }
        // place() above may have set bits on levels already cleared; recompute them.
        for level in 0..LEVELS {
            self.occupied[level] = (0..SLOTS)
                .filter(|&s| self.heads[level][s] != NIL)
                .fold(0, |m, s| m | 1 << s);
        }
    }

    fn fire(&mut self, i: u32, on_expire: &mut impl FnMut(TimerHandle, T)) {
        let generation = self.entries[i as usize].generation;
        if let Some(v) = self.release(i) {
            on_expire(
                TimerHandle {
                    index: i,
                    generation,
                },
                v,
            );
        }
    }

    /// The first occupied slot of `level` at or after the clock, with its start tick.
    fn next_slot(&self, level: usize) -> Option<(usize, u64)> {
        let occupied = self.occupied[level];
        if occupied == 0 {
            return None;
        }
        let shift = SLOT_BITS * level as u32;
        let pos = ((self.elapsed >> shift) & (SLOTS as u64 - 1)) as u32;
        let slot = (occupied.rotate_right(pos).trailing_zeros() + pos) % SLOTS as u32;
        let slot_range = 1u64 << shift;
        let level_range = slot_range << SLOT_BITS;
        let level_start = self.elapsed & !(level_range - 1);
        let mut tick = level_start + u64::from(slot) * slot_range;
        // Only the top level can hold an entry in the slot under the clock: a deadline beyond
        // the wheel's range wrapped around; it belongs to the next round (as in tokio's wheel).
        if slot < pos || (slot == pos && level == LEVELS - 1) {
            tick = tick.saturating_add(level_range);
        }
        Some((slot as usize, tick))
    }

    /// Links entry `i` into the slot its deadline belongs to, relative to the clock.
    fn place(&mut self, i: u32) {
        let tick = self.entries[i as usize].tick.max(self.elapsed);
        // Deadlines beyond the wheel's range wait in the top level and cascade again.
        let tick = tick.min(self.elapsed.saturating_add(RANGE - 1));
        self.earliest = self.earliest.min(tick);
        let differing = (self.elapsed ^ tick) | (SLOTS as u64 - 1);
        let level = ((63 - differing.leading_zeros()) / SLOT_BITS) as usize;
        let level = level.min(LEVELS - 1);
        let slot = ((tick >> (SLOT_BITS * level as u32)) & (SLOTS as u64 - 1)) as usize;
        let head = self.heads[level][slot];
        {
            let e = &mut self.entries[i as usize];
            e.level = level as u8;
            e.slot = slot as u8;
            e.prev = NIL;
            e.next = head;
        }
        if head != NIL {
            self.entries[head as usize].prev = i;
        }
        self.heads[level][slot] = i;
        self.occupied[level] |= 1u64 << slot;
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next, level, slot) = {
            let e = &self.entries[i as usize];
            (e.prev, e.next, usize::from(e.level), usize::from(e.slot))
        };
        if prev == NIL {
            self.heads[level][slot] = next;
            if next == NIL {
                self.occupied[level] &= !(1u64 << slot);
            }
        } else {
            self.entries[prev as usize].next = next;
        }
        if next != NIL {
            self.entries[next as usize].prev = prev;
        }
    }

    /// Returns entry `i` to the free list (already unlinked) and yields its value.
    fn release(&mut self, i: u32) -> Option<T> {
        let free = self.free;
        let e = &mut self.entries[i as usize];
        let v = e.value.take();
        e.generation = e.generation.wrapping_add(1);
        e.next = free;
        e.prev = NIL;
        self.free = i;
        if v.is_some() {
            self.len -= 1;
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn collect(w: &mut TimerWheel<u32>, now: Instant) -> Vec<u32> {
        let mut v = Vec::new();
        w.advance(now, |_, x| v.push(x));
        v.sort_unstable();
        v
    }

    #[test]
    fn fires_in_order_never_early() {
        let mut w = TimerWheel::new(Instant::ZERO, Duration::from_millis(1), 16);
        w.insert(ms(5), 5).unwrap();
        w.insert(ms(70), 70).unwrap();
        w.insert(ms(5000), 5000).unwrap();
        assert_eq!(collect(&mut w, ms(4)), Vec::<u32>::new());
        assert_eq!(collect(&mut w, ms(5)), vec![5]);
        assert_eq!(w.next_deadline().map(|t| t <= ms(70)), Some(true));
        assert_eq!(collect(&mut w, ms(69)), Vec::<u32>::new());
        assert_eq!(collect(&mut w, ms(4999)), vec![70]);
        assert_eq!(collect(&mut w, ms(5000)), vec![5000]);
        assert!(w.is_empty());
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn sub_tick_deadlines_round_up() {
        let mut w = TimerWheel::new(Instant::ZERO, Duration::from_millis(1), 4);
        w.insert(Instant::from_micros(1500), 1).unwrap();
        assert!(collect(&mut w, Instant::from_micros(1999)).is_empty());
        assert_eq!(collect(&mut w, ms(2)), vec![1]);
    }

    #[test]
    fn capacity_is_a_hard_bound_and_cancel_frees() {
        let mut w = TimerWheel::new(Instant::ZERO, Duration::from_millis(1), 2);
        let a = w.insert(ms(10), 1).unwrap();
        w.insert(ms(20), 2).unwrap();
        assert_eq!(w.insert(ms(30), 3), Err(3));
        assert_eq!(w.cancel(a), Some(1));
        assert_eq!(w.cancel(a), None, "stale handle");
        let c = w.insert(ms(30), 3).unwrap();
        assert_ne!(a, c, "reused slot gets a new generation");
        assert_eq!(w.len(), 2);
        assert_eq!(collect(&mut w, ms(100)), vec![2, 3]);
        assert_eq!(w.cancel(c), None, "fired timers cannot be cancelled");
    }

    #[test]
    fn far_deadlines_and_huge_jumps() {
        let mut w = TimerWheel::new(Instant::ZERO, Duration::from_micros(1), 8);
        w.insert(Instant::from_micros(RANGE * 3 + 7), 1).unwrap();
        w.insert(Instant::MAX, 2).unwrap();
        w.insert(Instant::from_micros(10), 3).unwrap();
        assert_eq!(
            collect(&mut w, Instant::from_micros(RANGE * 3 + 6)),
            vec![3]
        );
        assert_eq!(
            collect(&mut w, Instant::from_micros(RANGE * 3 + 7)),
            vec![1]
        );
        assert_eq!(w.len(), 1);
        assert_eq!(collect(&mut w, Instant::MAX), vec![2]);
        // A clock at the very end of time must not overflow.
        w.insert(Instant::MAX, 4).unwrap();
        assert_eq!(collect(&mut w, Instant::MAX), vec![4]);
        w.insert(Instant::from_micros(5), 5).unwrap();
        assert_eq!(collect(&mut w, Instant::MAX), vec![5]);
    }

    #[test]
    fn past_deadlines_fire_on_next_advance() {
        let mut w = TimerWheel::new(ms(100), Duration::from_millis(1), 4);
        w.insert(ms(50), 1).unwrap();
        assert_eq!(collect(&mut w, ms(100)), vec![1]);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        Cancel(usize),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => prop_oneof![0u64..100, 0u64..5_000, 0u64..400_000, 0u64..50_000_000].prop_map(Op::Insert),
            1 => any::<usize>().prop_map(Op::Cancel),
            3 => prop_oneof![0u64..10, 0u64..1000, 0u64..300_000, 0u64..20_000_000].prop_map(Op::Advance),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// A loop that sleeps until `next_deadline` and advances there (as an event-driven
        /// simulation does) fires every timer, none early, in a bounded number of steps:
        /// the deadline it reports always lets `advance` make progress.
        #[test]
        fn stepping_to_next_deadline_fires_everything(start in 0u64..1_000_000, tick_us in prop_oneof![Just(1u64), Just(1000), 1u64..5000], deadlines in proptest::collection::vec(0u64..60_000_000, 1..64), early in proptest::collection::vec(0u64..2_000_000, 0..8)) {
            let mut now = Instant::from_micros(start);
            let mut w = TimerWheel::new(now, Duration::from_micros(tick_us), 64);
            // Some advances that find nothing due before the timers go in.
            for d in early {
                now += Duration::from_micros(d);
                prop_assert!(collect(&mut w, now).is_empty());
            }
            let armed_at = now;
            for (i, d) in deadlines.iter().enumerate() {
                w.insert(armed_at + Duration::from_micros(*d), i as u32).unwrap();
            }
            let mut fired = 0;
            for _ in 0..(LEVELS + 2) * deadlines.len() + 8 {
                let Some(next) = w.next_deadline() else { break };
                now = now.max(next);
                for id in collect(&mut w, now) {
                    let deadline = armed_at.total_micros() + deadlines[id as usize];
                    let due_tick = deadline.div_ceil(tick_us);
                    prop_assert!(now.total_micros() / tick_us >= due_tick, "fired early");
                    fired += 1;
                }
            }
            prop_assert_eq!(fired, deadlines.len(), "every timer fired");
            prop_assert!(w.is_empty());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The wheel fires exactly what a naive list of (deadline, id) would, at each advance.
        #[test]
        fn matches_naive_model(start in 0u64..1_000_000, tick_us in prop_oneof![Just(1u64), Just(1000), 1u64..5000], ops in proptest::collection::vec(op(), 1..400)) {
            let tick = Duration::from_micros(tick_us);
            let mut now = Instant::from_micros(start);
            let mut w = TimerWheel::new(now, tick, 64);
            let mut model: BTreeMap<u32, (u64, TimerHandle)> = BTreeMap::new();
            let mut next_id = 0u32;
            for op in ops {
                match op {
                    Op::Insert(delta) => {
                        let deadline = now + Duration::from_micros(delta);
                        match w.insert(deadline, next_id) {
                            Ok(h) => { model.insert(next_id, (deadline.total_micros().div_ceil(tick_us), h)); }
                            Err(v) => { prop_assert_eq!(v, next_id); prop_assert_eq!(model.len(), 64); }
                        }
                        next_id += 1;
                    }
                    Op::Cancel(k) => {
                        if !model.is_empty() {
                            let id = *model.keys().nth(k % model.len()).unwrap();
                            let (_, h) = model.remove(&id).unwrap();
                            prop_assert_eq!(w.cancel(h), Some(id));
                        }
                    }
                    Op::Advance(delta) => {
                        now += Duration::from_micros(delta);
                        let now_tick = now.total_micros() / tick_us;
                        let mut expect: Vec<u32> = model.iter().filter(|(_, (t, _))| *t <= now_tick).map(|(id, _)| *id).collect();
                        for id in &expect { model.remove(id); }
                        expect.sort_unstable();
                        let got = collect(&mut w, now);
                        prop_assert_eq!(got, expect);
                    }
                }
                prop_assert_eq!(w.len(), model.len());
                if let Some(min) = model.values().map(|(t, _)| *t).min() {
                    let nd = w.next_deadline().expect("armed timers have a deadline");
                    prop_assert!(nd.total_micros() <= min * tick_us, "next_deadline must be a lower bound");
                }
            }
        }
    }
}
