//! [`HashKey`]: the secret SipHash key for tables keyed by what a peer chooses.
//!
//! STYLE.md habit 6: 4-tuples and ports come from the wire, so every table keyed
//! by them hashes with a key derived from the per-boot secrets
//! ([`crate::secrets::Secrets::table_key`]); a peer who does not know the key
//! cannot aim collisions at one bucket.

use core::hash::{BuildHasher, Hash};
use siphasher::sip::SipHasher13;

/// A 128-bit SipHash key, supplied by the caller (from [`crate::secrets::Secrets`]).
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

    /// The keyed SipHash-1-3 of one value.
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

/// `BuildHasher` that makes keyed SipHash-1-3 hashers.
#[derive(Clone, Copy, Debug)]
pub struct KeyedState {
    key: HashKey,
}

impl BuildHasher for KeyedState {
    type Hasher = SipHasher13;

    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.key.k0, self.key.k1)
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
    fn from_bytes_is_little_endian_halves() {
        let mut bytes = [0u8; 16];
        bytes[0] = 1;
        bytes[8] = 2;
        assert!(HashKey::from_bytes(bytes) == HashKey::new(1, 2));
        assert_eq!(format!("{:?}", HashKey::new(7, 7)), "HashKey(..)");
    }
}
