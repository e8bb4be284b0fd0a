//! [`HashKey`]: the secret key for tables keyed by what a peer chooses.
//!
//! STYLE.md habit 6: 4-tuples and ports come from the wire, so every table keyed
//! by them hashes with a key derived from the per-boot secrets
//! ([`crate::secrets::Secrets::table_key`]); a peer who does not know the key
//! cannot aim collisions at one bucket.
//!
//! The hash is a keyed folded multiply (the construction of foldhash and of ahash's
//! fallback): each 64-bit word is xored into the state and the state multiplied by a
//! secret odd constant to 128 bits, whose halves are xored. It is not a cryptographic
//! PRF (SipHash is), and makes no such claim: like Linux's `jhash` with a random
//! secret for its connection hash, it keeps a peer that does not know the key from
//! choosing colliding tuples, at a fraction of SipHash-1-3's cost (every segment looks
//! up at least one table; issue 17 measured SipHash at 8% of a connection's
//! instructions).

use core::hash::{BuildHasher, Hash, Hasher};

/// A 128-bit hash key, supplied by the caller (from [`crate::secrets::Secrets`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HashKey {
    k0: u64,
    k1: u64,
}

impl HashKey {
    /// A key from two 64-bit halves.
    pub const fn new(k0: u64, k1: u64) -> Self {
        HashKey { k0, k1 }
    }

    /// A key from 16 bytes (little-endian halves).
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        let [
            a0,
            a1,
            a2,
            a3,
            a4,
            a5,
            a6,
            a7,
            b0,
            b1,
            b2,
            b3,
            b4,
            b5,
            b6,
            b7,
        ] = bytes;
        HashKey {
            k0: u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
            k1: u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
        }
    }

    /// A `BuildHasher` for `std::collections::HashMap` using this key.
    pub const fn state(self) -> KeyedState {
        KeyedState { key: self }
    }

    /// The keyed SipHash-1-3 of one value: a PRF, for what an attacker must not be able
    /// to predict or invert (RFC 6056's port offset), not for per-packet lookups.
    pub fn sip_hash_one<T: Hash>(self, value: T) -> u64 {
        let mut h = siphasher::sip::SipHasher13::new_with_keys(self.k0, self.k1);
        value.hash(&mut h);
        h.finish()
    }

    /// The keyed hash of one value.
    pub fn hash_one<T: Hash>(self, value: T) -> u64 {
        self.state().hash_one(value)
    }
}

impl core::fmt::Debug for HashKey {
    /// Never prints the secret.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HashKey(..)")
    }
}

/// `BuildHasher` that makes [`KeyedHasher`]s.
#[derive(Clone, Copy, Debug)]
pub struct KeyedState {
    key: HashKey,
}

impl BuildHasher for KeyedState {
    type Hasher = KeyedHasher;

    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher {
            // The multiplier is made odd (so the multiply loses no low bit of the
            // state); the bit that costs goes into the state instead.
            state: self.key.k0 ^ (self.key.k1 & 1) << 63,
            multiplier: self.key.k1 | 1,
        }
    }
}

/// The 128-bit product of `a` and `b`, its halves xored.
#[inline]
const fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = (a as u128) * (b as u128);
    (product as u64) ^ ((product >> 64) as u64)
}

/// A digit of pi, xored into the multiplier between words so that a word's position
/// changes its effect (a zero state cannot absorb two equal words alike).
const ROUND: u64 = 0x243f_6a88_85a3_08d3;

/// The keyed hasher (see the module doc); one multiply per 64-bit word written.
#[derive(Clone, Copy, Debug)]
pub struct KeyedHasher {
    state: u64,
    multiplier: u64,
}

impl Hasher for KeyedHasher {
    #[inline]
    fn write_u64(&mut self, word: u64) {
        self.state = folded_multiply(self.state ^ word, self.multiplier);
        self.multiplier = next_multiplier(self.multiplier);
    }

    #[inline]
    fn write_u32(&mut self, word: u32) {
        self.write_u64(u64::from(word));
    }

    #[inline]
    fn write_u16(&mut self, word: u16) {
        self.write_u64(u64::from(word));
    }

    #[inline]
    fn write_u8(&mut self, word: u8) {
        self.write_u64(u64::from(word));
    }

    #[inline]
    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length in the top byte: "ab" and "ab\0" differ.
            self.write_u64(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        finalize(self.state, self.multiplier)
    }
}

/// The multiplier for the next word after `multiplier`.
#[inline]
const fn next_multiplier(multiplier: u64) -> u64 {
    (multiplier.rotate_left(17) ^ ROUND) | 1
}

/// The last folded multiply and MurmurHash3's 64-bit finalizer: every input bit
/// reaches the low bits the tables index by (a folded multiply alone left
/// linear-hash buckets uneven).
#[inline]
const fn finalize(state: u64, multiplier: u64) -> u64 {
    let mut h = folded_multiply(state, multiplier);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The keyed hash of two fixed words (a 4-tuple packed into 64 + 32 bits) with the
/// starting state and the three multipliers worked out once from the key: the
/// value [`HashKey::hash_one`] gives for a value whose `Hash` writes a `u64` then a
/// `u32`, without re-deriving them on every lookup (a table hashes every segment).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TwoWordHasher {
    state: u64,
    multipliers: [u64; 3],
}

impl TwoWordHasher {
    /// The hasher for `key`.
    pub fn new(key: HashKey) -> Self {
        let start = key.state().build_hasher();
        let m1 = next_multiplier(start.multiplier);
        TwoWordHasher {
            state: start.state,
            multipliers: [start.multiplier, m1, next_multiplier(m1)],
        }
    }

    /// The hash of `first` then `second`.
    #[inline]
    pub fn hash(&self, first: u64, second: u32) -> u64 {
        let [m0, m1, m2] = self.multipliers;
        let state = folded_multiply(self.state ^ first, m0);
        let state = folded_multiply(state ^ u64::from(second), m1);
        finalize(state, m2)
    }
}

impl core::fmt::Debug for TwoWordHasher {
    /// Never prints what is derived from the secret.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TwoWordHasher(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FourTuple;
    use core::net::{Ipv4Addr, SocketAddrV4};

    fn tuple(port: u16) -> FourTuple {
        FourTuple::new(
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80),
            SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 1), port),
        )
    }

    #[test]
    fn same_key_same_hash_other_key_other_hash() {
        let a = HashKey::new(1, 2);
        let b = HashKey::new(1, 3);
        assert_eq!(a.hash_one(tuple(1000)), a.hash_one(tuple(1000)));
        assert_ne!(a.hash_one(tuple(1000)), b.hash_one(tuple(1000)));
        assert_ne!(a.hash_one(tuple(1000)), a.hash_one(tuple(1001)));
    }

    #[test]
    fn tuples_spread_evenly_over_buckets() {
        // 65,536 tuples that differ only in the peer's port (what a flood varies) over
        // 1,024 buckets: every bucket gets close to its share of 64.
        let key = HashKey::new(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        let mut buckets = vec![0u32; 1024];
        for port in 0..=u16::MAX {
            let h = key.hash_one(tuple(port)) as u32;
            buckets[crate::table::reciprocal_scale(h, 1024) as usize] += 1;
        }
        let (min, max) = (
            *buckets.iter().min().unwrap(),
            *buckets.iter().max().unwrap(),
        );
        assert!(min >= 32 && max <= 110, "bucket loads {min}..{max}");
    }

    #[test]
    fn byte_writes_see_length_and_position() {
        let key = HashKey::new(5, 6);
        assert_ne!(
            key.hash_one(b"ab".as_slice()),
            key.hash_one(b"ab\0".as_slice())
        );
        assert_ne!(key.hash_one((1u64, 2u64)), key.hash_one((2u64, 1u64)));
        assert_ne!(key.hash_one((0u64, 0u64)), key.hash_one(0u64));
    }

    #[test]
    fn two_word_hasher_equals_the_hasher() {
        for (k0, k1) in [
            (0, 0),
            (1, 2),
            (u64::MAX, u64::MAX),
            (0x0123_4567, 0xfedc_ba98),
        ] {
            let key = HashKey::new(k0, k1);
            let two = TwoWordHasher::new(key);
            for (a, b) in [
                (0, 0),
                (1, 2),
                (u64::MAX, u32::MAX),
                (0xc612_0001_c612_0002, 0x0050_9c40),
            ] {
                assert_eq!(
                    two.hash(a, b),
                    key.hash_one((a, b)),
                    "{k0:#x} {k1:#x} {a:#x} {b:#x}"
                );
            }
        }
        assert_eq!(
            format!("{:?}", TwoWordHasher::new(HashKey::new(7, 7))),
            "TwoWordHasher(..)"
        );
    }

    #[test]
    fn from_bytes_is_little_endian_halves() {
        let mut bytes = [0u8; 16];
        bytes[0] = 1;
        bytes[8] = 2;
        assert!(HashKey::from_bytes(bytes) == HashKey::new(1, 2));
        assert_eq!(format!("{:?}", HashKey::new(7, 7)), "HashKey(..)");
    }
}
