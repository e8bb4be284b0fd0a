//! Initial sequence numbers per RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secretkey).

use crate::FourTuple;
use crate::time::Instant;
use core::hash::Hasher;
use siphasher::sip::SipHasher24;

/// RFC 6528 §3 ISN generator: a 4 µs clock plus a keyed SipHash of the 4-tuple.
#[derive(Clone)]
pub struct IsnGenerator {
    key: [u8; 16],
}

impl core::fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("IsnGenerator { key: <secret> }")
    }
}

impl IsnGenerator {
    /// A generator with the given secret key (from the engine's seeded generator).
    pub fn new(key: [u8; 16]) -> Self {
        IsnGenerator { key }
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
        let m = (now.total_micros() / 4) as u32;
        m.wrapping_add(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

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
        assert_ne!(g.generate(&tuple(1001), t0), a);
        assert_ne!(IsnGenerator::new([8; 16]).generate(&tuple(1000), t0), a);
        assert_eq!(
            g.generate(&tuple(1000), t0),
            a,
            "deterministic for the same inputs"
        );
    }
}
