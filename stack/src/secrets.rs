//! [`Secrets`]: the keys behind every choice a peer must not predict or aim at —
//! initial sequence numbers, timestamp offsets, the ephemeral-port search, the
//! keyed hashes of the tables and SYN cookies.
//!
//! Linux draws these once per boot (`net_secret`, `ts_secret`, `syncookie_secret`,
//! `table_perturb`), so every socket of the machine agrees on them and a restarted
//! program keeps choosing ISNs and timestamps on the same line. surge does the same
//! with one 256-bit master secret per boot, shared by every surge process through a
//! file under `/run` (see `runtime::boot` for the I/O); each purpose gets its own
//! key derived from the master with a keyed SipHash, so one key leaking says nothing
//! about another.
//!
//! This module is sans-IO: it never reads a clock, a file or the OS's entropy.
//! Tests build [`Secrets::from_seed`] and get the same packets for the same seed.
//!
//! ```
//! use surge_stack::secrets::Secrets;
//! let a = Secrets::from_seed(1);
//! assert_eq!(a.isn_key(), Secrets::from_seed(1).isn_key());
//! assert_ne!(a.isn_key(), a.timestamp_key());
//! ```

use core::hash::Hasher;
use siphasher::sip128::{Hasher128, SipHasher24};

use crate::table::HashKey;

/// The per-boot master secret and the keys derived from it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets {
    master: [u8; Secrets::LEN],
}

impl core::fmt::Debug for Secrets {
    /// Never prints the secret.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secrets(..)")
    }
}

/// What a derived key is for; its label keeps the keys apart.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Isn,
    TimestampOffset,
    EphemeralPorts,
    Tables,
    Cookies,
    CookiesSecond,
}

impl Purpose {
    const fn label(self) -> &'static [u8] {
        match self {
            Purpose::Isn => b"surge isn v1",
            Purpose::TimestampOffset => b"surge ts_off v1",
            Purpose::EphemeralPorts => b"surge ports v1",
            Purpose::Tables => b"surge tables v1",
            Purpose::Cookies => b"surge cookies v1",
            Purpose::CookiesSecond => b"surge cookies v1 second",
        }
    }
}

impl Secrets {
    /// Bytes of the master secret.
    pub const LEN: usize = 32;

    /// Secrets from a master drawn from the OS's entropy (getrandom).
    pub const fn from_bytes(master: [u8; Secrets::LEN]) -> Self {
        Secrets { master }
    }

    /// Deterministic secrets from a seed, for tests and simulations only: anyone
    /// who knows the seed can predict every ISN and port.
    pub fn from_seed(seed: u64) -> Self {
        let mut master = [0u8; Secrets::LEN];
        let mut x = seed;
        for chunk in master.chunks_exact_mut(8) {
            // splitmix64: distinct, well-mixed words from any seed (0 included).
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        Secrets { master }
    }

    /// The master secret (what the boot file holds).
    pub const fn master(&self) -> &[u8; Secrets::LEN] {
        &self.master
    }

    /// A 128-bit key for `purpose`: SipHash-2-4-128 keyed with the first half of the
    /// master, over the purpose's label and the second half.
    fn derive(&self, purpose: Purpose) -> [u8; 16] {
        let (key, rest) = self.master.split_at(16);
        let mut k = [0u8; 16];
        k.copy_from_slice(key);
        let mut h = SipHasher24::new_with_key(&k);
        h.write(purpose.label());
        h.write(rest);
        h.finish128().as_bytes()
    }

    /// Key of the RFC 6528 ISN function (Linux `net_secret` in `secure_tcp_seq`).
    pub fn isn_key(&self) -> [u8; 16] {
        self.derive(Purpose::Isn)
    }

    /// Key of the per-address-pair timestamp offset (Linux `ts_secret` in
    /// `secure_tcp_ts_off`, RFC 7323 §5.4).
    pub fn timestamp_key(&self) -> [u8; 16] {
        self.derive(Purpose::TimestampOffset)
    }

    /// Key of the RFC 6056 ephemeral-port search (Linux `net_secret` in
    /// `secure_ipv4_port_ephemeral`).
    pub fn port_key(&self) -> HashKey {
        HashKey::from_bytes(self.derive(Purpose::EphemeralPorts))
    }

    /// Key of the keyed hashes of the bind, listen and connection tables (STYLE.md
    /// habit 6; Linux `inet_ehash_secret`).
    pub fn table_key(&self) -> HashKey {
        HashKey::from_bytes(self.derive(Purpose::Tables))
    }

    /// Keys of SYN cookies (RFC 4987 §3.6): two 128-bit halves, as Linux's
    /// `syncookie_secret[2]` (one hashes the 4-tuple, the other the counter).
    pub fn cookie_key(&self) -> [u8; 32] {
        let mut key = [0u8; 32];
        let (first, second) = key.split_at_mut(16);
        first.copy_from_slice(&self.derive(Purpose::Cookies));
        second.copy_from_slice(&self.derive(Purpose::CookiesSecond));
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_purpose_has_its_own_key_and_keys_follow_the_master() {
        let s = Secrets::from_seed(7);
        let keys: HashSet<[u8; 16]> = [
            s.isn_key(),
            s.timestamp_key(),
            s.derive(Purpose::Cookies),
            s.derive(Purpose::CookiesSecond),
            s.derive(Purpose::EphemeralPorts),
            s.derive(Purpose::Tables),
        ]
        .into_iter()
        .collect();
        assert_eq!(keys.len(), 6, "derived keys must differ per purpose");
        let t = Secrets::from_seed(8);
        assert_ne!(s.isn_key(), t.isn_key());
        assert_ne!(s.port_key(), t.port_key());
        // Same master, same keys: two processes sharing the boot file agree.
        let copy = Secrets::from_bytes(*s.master());
        assert_eq!(copy.isn_key(), s.isn_key());
        assert!(copy.table_key() == s.table_key());
    }

    #[test]
    fn every_master_byte_matters() {
        let s = Secrets::from_seed(1);
        for i in 0..Secrets::LEN {
            let mut m = *s.master();
            m[i] ^= 1;
            assert_ne!(Secrets::from_bytes(m).isn_key(), s.isn_key(), "byte {i}");
        }
    }

    #[test]
    fn debug_never_prints_the_secret() {
        assert_eq!(format!("{:?}", Secrets::from_seed(3)), "Secrets(..)");
    }
}
