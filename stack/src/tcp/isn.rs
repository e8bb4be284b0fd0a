//! Initial sequence numbers per RFC 6528 (ISN = M + F(localip, localport, remoteip,
//! remoteport, secretkey)) and timestamp offsets per RFC 7323 §5.4, on clocks that
//! count from the machine's boot.
//!
//! Linux's `secure_tcp_seq` and `secure_tcp_ts_off` are the model: the key is kept
//! for the boot (see [`crate::secrets`]) and the clocks are the boot-time clock, so
//! a restarted program continues the line of ISNs and timestamps of the previous
//! one instead of starting again from zero. That is what lets a peer's TIME-WAIT
//! accept our new SYNs on a reused 4-tuple (RFC 6191 §2: a higher timestamp, or a
//! higher sequence number without timestamps).
//!
//! The engine's own [`Instant`] counts from engine start; both generators take the
//! boot-time clock's reading at that instant (`clock_base`, a number the runtime
//! reads and passes in — this module reads no clock) and add it.

use core::hash::Hasher;
use core::net::Ipv4Addr;
use core::time::Duration;

use crate::FourTuple;
use crate::time::Instant;
use siphasher::sip::SipHasher24;

/// RFC 6528 §3 ISN generator: a 4 µs clock since boot plus a keyed SipHash of the 4-tuple.
#[derive(Clone)]
pub struct IsnGenerator {
    key: [u8; 16],
    clock_base_micros: u64,
}

impl core::fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IsnGenerator { key: <secret> }")
    }
}

impl IsnGenerator {
    /// A generator with the given secret key whose clock counts from engine start.
    pub fn new(key: [u8; 16]) -> Self {
        IsnGenerator::with_clock_base(key, Duration::ZERO)
    }

    /// A generator whose clock reads `clock_base` (the boot-time clock at the
    /// engine's `Instant::ZERO`) plus the engine's time.
    pub fn with_clock_base(key: [u8; 16], clock_base: Duration) -> Self {
        IsnGenerator {
            key,
            clock_base_micros: u64::try_from(clock_base.as_micros()).unwrap_or(u64::MAX),
        }
    }

    /// The ISN for a connection on `tuple` opened at `now`.
    pub fn generate(&self, tuple: &FourTuple, now: Instant) -> u32 {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write(&tuple.local_addr.octets());
        h.write_u16(tuple.local_port);
        h.write(&tuple.remote_addr.octets());
        h.write_u16(tuple.remote_port);
        // Truncation intended: F is a 32-bit value.
        let f = h.finish() as u32;
        // RFC 6528 §3: M is a timer that ticks every 4 microseconds (modulo 2^32).
        let micros = self.clock_base_micros.wrapping_add(now.total_micros());
        let m = (micros / 4) as u32;
        m.wrapping_add(f)
    }
}

/// RFC 7323 §5.4 timestamp offsets: a keyed hash of the address pair (Linux
/// `secure_tcp_ts_off`) plus the boot-time clock at engine start, in milliseconds.
///
/// A connection's TSval is `offset + engine milliseconds`: it rises across
/// connections and restarts for one address pair, while an observer of two pairs
/// cannot tell how long the machine has been up or line the two clocks up.
#[derive(Clone)]
pub struct TimestampOffsets {
    key: [u8; 16],
    clock_base_millis: u32,
}

impl core::fmt::Debug for TimestampOffsets {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TimestampOffsets { key: <secret> }")
    }
}

impl TimestampOffsets {
    /// Offsets with `key`, for an engine whose `Instant::ZERO` is `clock_base` after boot.
    pub fn new(key: [u8; 16], clock_base: Duration) -> Self {
        TimestampOffsets {
            key,
            // Truncation intended: the TS clock wraps modulo 2^32.
            clock_base_millis: clock_base.as_millis() as u32,
        }
    }

    /// The value to add to the engine's milliseconds for TSvals from `local` to `remote`.
    pub fn offset(&self, local: Ipv4Addr, remote: Ipv4Addr) -> u32 {
        let mut h = SipHasher24::new_with_key(&self.key);
        h.write(&local.octets());
        h.write(&remote.octets());
        // Truncation intended: the offset is a 32-bit value.
        (h.finish() as u32).wrapping_add(self.clock_base_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddrV4;

    fn tuple(port: u16) -> FourTuple {
        FourTuple::new(
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), port),
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80),
        )
    }

    #[test]
    fn clock_advances_isn_and_tuple_and_key_change_it() {
        let g = IsnGenerator::new([7; 16]);
        let t0 = Instant::from_micros(0);
        let a = g.generate(&tuple(1000), t0);
        assert_eq!(
            g.generate(&tuple(1000), Instant::from_micros(400)),
            a.wrapping_add(100)
        );
        assert_ne!(g.generate(&tuple(1000), t0), a.wrapping_add(1));
        assert_ne!(g.generate(&tuple(1001), t0), a);
        assert_ne!(IsnGenerator::new([8; 16]).generate(&tuple(1000), t0), a);
        assert_eq!(
            g.generate(&tuple(1000), t0),
            a,
            "deterministic for the same inputs"
        );
    }

    #[test]
    fn a_later_process_continues_the_isn_line_of_an_earlier_one() {
        // Process 1 starts 10 s after boot and opens a connection 5 s later; process 2
        // starts at 20 s (same boot key) and opens the same 4-tuple 1 ms later.
        let key = [3; 16];
        let first = IsnGenerator::with_clock_base(key, Duration::from_secs(10));
        let second = IsnGenerator::with_clock_base(key, Duration::from_secs(20));
        let old = first.generate(&tuple(40000), Instant::from_micros(5_000_000));
        let new = second.generate(&tuple(40000), Instant::from_micros(1_000));
        // 5.001 s later at 4 µs per tick.
        assert_eq!(new.wrapping_sub(old), 5_001_000 / 4);
        // A fresh process with the old scheme (clock from zero) went backwards.
        let restart = IsnGenerator::new(key).generate(&tuple(40000), Instant::from_micros(1_000));
        assert!((restart.wrapping_sub(old) as i32) < 0);
    }

    #[test]
    fn timestamp_offsets_keep_rising_across_restarts_and_differ_per_pair() {
        let a = Ipv4Addr::new(198, 18, 0, 1);
        let b = Ipv4Addr::new(198, 18, 0, 2);
        let c = Ipv4Addr::new(198, 18, 0, 3);
        let key = [9; 16];
        let first = TimestampOffsets::new(key, Duration::from_secs(100));
        let second = TimestampOffsets::new(key, Duration::from_millis(100_250));
        // TSval = offset + engine ms: the last of process 1 (at 200 ms) against the
        // first of process 2 (at 0 ms).
        let last = first.offset(a, b).wrapping_add(200);
        let next = second.offset(a, b);
        assert_eq!(next.wrapping_sub(last), 50);
        assert_ne!(first.offset(a, b), first.offset(a, c));
        assert_ne!(
            first.offset(a, b),
            TimestampOffsets::new([10; 16], Duration::from_secs(100)).offset(a, b)
        );
    }
}
