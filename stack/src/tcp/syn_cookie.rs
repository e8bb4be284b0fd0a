//! SYN cookies (RFC 4987 §3.6), laid out as Linux's `cookie_v4_init_sequence` and
//! `cookie_init_timestamp` lay them out.
//!
//! When a listener's SYN queue is full, the SYN-ACK's ISN carries the connection's
//! state instead of a request record: the returning ACK proves the peer saw it
//! (`SEG.ACK - 1` is the cookie) and lets the listener rebuild the connection.
//!
//! The ISN (Linux `secure_tcp_syn_cookie`):
//!
//! ```text
//! iss = H0(tuple) + irs + (minute << 24) + ((H1(tuple, minute) + mss_index) mod 2^24)
//! ```
//!
//! `H0` and `H1` are SipHash-2-4 under two halves of a secret key, `minute` counts
//! minutes of the engine's clock, and `mss_index` picks one of [`MSS_TABLE`]. A cookie
//! is valid in the minute it was made and the next ([`COOKIE_MAX_AGE_MINUTES`], Linux
//! `MAX_SYNCOOKIE_AGE`). When the peer sent timestamps, the low [`TS_OPTION_BITS`] of
//! our TSval carry its window scale (15 for "none"), SACK-permitted and ECN
//! ([`cookie_timestamp`]), and its echo brings them back ([`CookieOptions::from_tsecr`]).
//! Without timestamps those options are lost, as in Linux.
//!
//! The key is the caller's (a boot-wide secret); nothing here draws randomness.

use core::hash::Hasher;

use siphasher::sip::SipHasher24;

use crate::FourTuple;
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpRepr};

/// The MSS values a cookie can carry (Linux `msstab`): the largest not above the peer's.
pub const MSS_TABLE: [u16; 4] = [536, 1300, 1440, 1460];
/// Bits of the ISN that carry the hash and MSS index (Linux `COOKIEBITS`).
const COOKIE_BITS: u32 = 24;
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;
/// A cookie is accepted in the minute it was made and this many minus one after.
pub const COOKIE_MAX_AGE_MINUTES: u32 = 2;
/// Low bits of the TSval that carry options (Linux `TSBITS`).
pub const TS_OPTION_BITS: u32 = 6;
const TS_WSCALE_MASK: u32 = 0xf;
const TS_SACK: u32 = 1 << 4;
const TS_ECN: u32 = 1 << 5;
/// The cookie clock's period.
const MINUTE_MICROS: u64 = 60_000_000;

/// Options a cookie keeps in the timestamp (Linux `cookie_timestamp_decode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CookieOptions {
    /// The peer's window scale (`None`: it sent no window-scale option).
    pub wscale: Option<u8>,
    /// The peer sent SACK-permitted.
    pub sack_ok: bool,
    /// The peer asked for ECN.
    pub ecn_ok: bool,
}

impl CookieOptions {
    /// The options a SYN asked for.
    pub fn from_syn(syn: &TcpRepr) -> Self {
        CookieOptions {
            // RFC 7323 §2.3: a shift above 14 is taken as 14.
            wscale: syn.options.window_scale.map(|s| s.min(14)),
            sack_ok: syn.options.sack_permitted,
            ecn_ok: syn.flags.contains(TcpFlags::ECE | TcpFlags::CWR),
        }
    }

    /// The low bits of a TSval that encode these options.
    pub fn bits(self) -> u32 {
        let mut bits = self.wscale.map_or(TS_WSCALE_MASK, u32::from);
        if self.sack_ok {
            bits |= TS_SACK;
        }
        if self.ecn_ok {
            bits |= TS_ECN;
        }
        bits
    }

    /// The options echoed back in the peer's TSecr.
    pub fn from_tsecr(tsecr: u32) -> Self {
        let wscale = tsecr & TS_WSCALE_MASK;
        CookieOptions {
            // Truncation intended: the mask keeps four bits.
            wscale: (wscale != TS_WSCALE_MASK).then_some(wscale as u8),
            sack_ok: tsecr & TS_SACK != 0,
            ecn_ok: tsecr & TS_ECN != 0,
        }
    }
}

/// The TSval to send in a cookie SYN-ACK (Linux `cookie_init_timestamp`): `ts_now`
/// with its low bits replaced by `options`, moved back one step if that would run ahead
/// of the clock (a TSval must never be from the future).
pub fn cookie_timestamp(ts_now: u32, options: CookieOptions) -> u32 {
    let step = 1u32 << TS_OPTION_BITS;
    let ts = (ts_now & !(step - 1)) | options.bits();
    if ts > ts_now {
        ts.wrapping_sub(step)
    } else {
        ts
    }
}

/// The index into [`MSS_TABLE`] for a peer's MSS, and the MSS it stands for.
pub fn mss_index(peer_mss: u16) -> (u32, u16) {
    let index = MSS_TABLE.iter().rposition(|&m| peer_mss >= m).unwrap_or(0);
    // In range: the table has four entries.
    (index as u32, MSS_TABLE[index])
}

/// Why a cookie ACK was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// Not a plain ACK (SYN, RST or no ACK bit): no cookie to check.
    NotAnAck,
    /// Its minute is older than the validity (or a forgery that decodes as such).
    Expired,
    /// The hash does not match: forged, or for another 4-tuple or key.
    Invalid,
}

/// A connection rebuilt from a valid cookie ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieConnection {
    /// The peer's ISN (`SEG.SEQ - 1`).
    pub irs: u32,
    /// Our ISN, the cookie (`SEG.ACK - 1`).
    pub iss: u32,
    /// The MSS the cookie carried.
    pub mss: u16,
    /// Window scale, SACK and ECN, when the ACK carried a timestamp echo.
    pub options: Option<CookieOptions>,
}

impl CookieConnection {
    /// A SYN equivalent to the one the peer sent, as far as the cookie recorded it, for
    /// building the connection as from a SYN (`Tcb::accept_syn`). `window_len` is the
    /// ACK's window, the best guess for the SYN's; `tsval` the ACK's timestamp.
    pub fn reconstructed_syn(&self, ack: &TcpRepr) -> TcpRepr {
        let mut syn = TcpRepr {
            src_port: ack.src_port,
            dst_port: ack.dst_port,
            seq_number: self.irs,
            flags: TcpFlags::SYN,
            window_len: ack.window_len,
            ..TcpRepr::default()
        };
        syn.options.mss = Some(self.mss);
        if let (Some(opts), Some((tsval, _))) = (self.options, ack.options.timestamp) {
            syn.options.window_scale = opts.wscale;
            syn.options.sack_permitted = opts.sack_ok;
            syn.options.timestamp = Some((tsval, 0));
        }
        syn
    }
}

/// The keyed cookie generator and checker.
#[derive(Clone)]
pub struct SynCookies {
    keys: [[u8; 16]; 2],
}

impl core::fmt::Debug for SynCookies {
    /// Never prints the secret.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SynCookies { keys: <secret> }")
    }
}

impl SynCookies {
    /// A generator keyed with `secret` (two SipHash keys, Linux `syncookie_secret[2]`).
    pub fn new(secret: [u8; 32]) -> Self {
        let mut keys = [[0u8; 16]; 2];
        keys[0].copy_from_slice(&secret[..16]);
        keys[1].copy_from_slice(&secret[16..]);
        SynCookies { keys }
    }

    fn hash(&self, tuple: &FourTuple, count: u32, which: usize) -> u32 {
        let mut h = SipHasher24::new_with_key(&self.keys[which]);
        h.write(&tuple.remote_addr.octets());
        h.write(&tuple.local_addr.octets());
        h.write_u16(tuple.remote_port);
        h.write_u16(tuple.local_port);
        h.write_u32(count);
        // Truncation intended: the cookie uses 32 bits of the hash.
        h.finish() as u32
    }

    /// The cookie clock: minutes of `now` (Linux `tcp_cookie_time`).
    fn minute(now: Instant) -> u32 {
        // Truncation intended: the count wraps, only differences matter.
        (now.total_micros() / MINUTE_MICROS) as u32
    }

    /// RFC 4987 §3.6: the ISN for a SYN-ACK answering `syn` on `tuple` (ours local) at
    /// `now`, and the MSS it promises (the largest of [`MSS_TABLE`] not above the peer's;
    /// RFC 9293 §3.7.1: 536 when the SYN had no MSS option).
    pub fn iss(&self, tuple: &FourTuple, syn: &TcpRepr, now: Instant) -> (u32, u16) {
        let (index, mss) = mss_index(syn.options.mss.unwrap_or(536));
        let count = Self::minute(now);
        let iss = self
            .hash(tuple, 0, 0)
            .wrapping_add(syn.seq_number)
            .wrapping_add(count << COOKIE_BITS)
            .wrapping_add(self.hash(tuple, count, 1).wrapping_add(index) & COOKIE_MASK);
        (iss, mss)
    }

    /// RFC 4987 §3.6: checks the cookie in `ack` (a segment on `tuple` that found no
    /// request record) at `now` (Linux `__cookie_v4_check`), and rebuilds the connection.
    pub fn check(
        &self,
        tuple: &FourTuple,
        ack: &TcpRepr,
        now: Instant,
    ) -> Result<CookieConnection, CookieError> {
        if !ack.flags.contains(TcpFlags::ACK) || ack.flags.intersects(TcpFlags::SYN | TcpFlags::RST)
        {
            return Err(CookieError::NotAnAck);
        }
        let cookie = ack.ack_number.wrapping_sub(1);
        let irs = ack.seq_number.wrapping_sub(1);
        let count = Self::minute(now);
        let stripped = cookie.wrapping_sub(self.hash(tuple, 0, 0).wrapping_add(irs));
        let age = count.wrapping_sub(stripped >> COOKIE_BITS) & (u32::MAX >> COOKIE_BITS);
        if age >= COOKIE_MAX_AGE_MINUTES {
            return Err(CookieError::Expired);
        }
        let index =
            stripped.wrapping_sub(self.hash(tuple, count.wrapping_sub(age), 1)) & COOKIE_MASK;
        let mss = *MSS_TABLE.get(index as usize).ok_or(CookieError::Invalid)?;
        let options = ack
            .options
            .timestamp
            .map(|(_, tsecr)| CookieOptions::from_tsecr(tsecr));
        Ok(CookieConnection {
            irs,
            iss: cookie,
            mss,
            options,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, SocketAddrV4};

    fn tuple(port: u16) -> FourTuple {
        FourTuple::new(
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80),
            SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 9), port),
        )
    }

    fn syn(seq: u32, mss: Option<u16>) -> TcpRepr {
        let mut s = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq_number: seq,
            flags: TcpFlags::SYN,
            window_len: 64240,
            ..TcpRepr::default()
        };
        s.options.mss = mss;
        s
    }

    fn ack_for(syn: &TcpRepr, iss: u32, tsecr: Option<u32>) -> TcpRepr {
        let mut a = TcpRepr {
            src_port: syn.src_port,
            dst_port: syn.dst_port,
            seq_number: syn.seq_number.wrapping_add(1),
            ack_number: iss.wrapping_add(1),
            flags: TcpFlags::ACK,
            window_len: 502,
            ..TcpRepr::default()
        };
        a.options.timestamp = tsecr.map(|e| (777, e));
        a
    }

    const KEY: [u8; 32] = [0x42; 32];
    const T0: Instant = Instant::from_micros(3 * MINUTE_MICROS + 5);

    #[test]
    fn encode_then_decode_gives_back_the_mss_index_and_sequence_numbers() {
        let cookies = SynCookies::new(KEY);
        for (peer_mss, expect) in [
            (None, 536),
            (Some(100), 536),
            (Some(1299), 536),
            (Some(1300), 1300),
            (Some(1448), 1440),
            (Some(1460), 1460),
            (Some(9000), 1460),
        ] {
            let s = syn(0xffff_fff0, peer_mss);
            let (iss, mss) = cookies.iss(&tuple(40000), &s, T0);
            assert_eq!(mss, expect);
            let got = cookies
                .check(&tuple(40000), &ack_for(&s, iss, None), T0)
                .unwrap();
            assert_eq!(got.mss, expect);
            assert_eq!(got.irs, 0xffff_fff0);
            assert_eq!(got.iss, iss);
            assert_eq!(got.options, None);
        }
    }

    #[test]
    fn valid_for_the_next_minute_and_no_longer() {
        let cookies = SynCookies::new(KEY);
        let s = syn(1000, Some(1460));
        let (iss, _) = cookies.iss(&tuple(40000), &s, T0);
        let a = ack_for(&s, iss, None);
        let later = |micros: u64| Instant::from_micros(T0.total_micros() + micros);
        assert!(
            cookies
                .check(&tuple(40000), &a, later(MINUTE_MICROS))
                .is_ok()
        );
        assert!(
            cookies
                .check(&tuple(40000), &a, later(2 * MINUTE_MICROS - 10))
                .is_ok()
        );
        assert_eq!(
            cookies.check(&tuple(40000), &a, later(2 * MINUTE_MICROS)),
            Err(CookieError::Expired)
        );
    }

    #[test]
    fn forged_or_misdirected_cookies_are_refused() {
        let cookies = SynCookies::new(KEY);
        let s = syn(1000, Some(1460));
        let (iss, _) = cookies.iss(&tuple(40000), &s, T0);
        // Another port, another key, a tampered cookie, a tampered sequence number.
        assert!(
            cookies
                .check(&tuple(40001), &ack_for(&s, iss, None), T0)
                .is_err()
        );
        let other = SynCookies::new([7; 32]);
        assert!(
            other
                .check(&tuple(40000), &ack_for(&s, iss, None), T0)
                .is_err()
        );
        assert!(
            cookies
                .check(&tuple(40000), &ack_for(&s, iss ^ 0x10, None), T0)
                .is_err()
        );
        // (A sequence number off by less than 4 shifts the MSS index, as in Linux: only
        // someone who saw the SYN-ACK can do it, and they could complete it anyway.)
        let mut a = ack_for(&s, iss, None);
        a.seq_number += 1000;
        assert!(cookies.check(&tuple(40000), &a, T0).is_err());
        // Not an ACK at all.
        let mut a = ack_for(&s, iss, None);
        a.flags |= TcpFlags::RST;
        assert_eq!(
            cookies.check(&tuple(40000), &a, T0),
            Err(CookieError::NotAnAck)
        );
        // Random guesses: at most the 4-in-2^24 chance of a lucky index per guess.
        let accepted = (0..100_000u32)
            .filter(|g| {
                let a = ack_for(&s, g.wrapping_mul(2_654_435_761), None);
                cookies.check(&tuple(40000), &a, T0).is_ok()
            })
            .count();
        assert!(accepted <= 1, "{accepted} guesses accepted");
    }

    #[test]
    fn timestamp_carries_window_scale_sack_and_ecn() {
        for opts in [
            CookieOptions {
                wscale: None,
                sack_ok: false,
                ecn_ok: false,
            },
            CookieOptions {
                wscale: Some(0),
                sack_ok: true,
                ecn_ok: false,
            },
            CookieOptions {
                wscale: Some(7),
                sack_ok: true,
                ecn_ok: true,
            },
            CookieOptions {
                wscale: Some(14),
                sack_ok: false,
                ecn_ok: true,
            },
        ] {
            for ts_now in [0x40u32, 1_000_000, 1_000_063, u32::MAX] {
                let ts = cookie_timestamp(ts_now, opts);
                assert!(ts <= ts_now, "never ahead of the clock");
                assert!(ts_now - ts < 64, "at most one step behind");
                assert_eq!(CookieOptions::from_tsecr(ts), opts);
            }
        }
        // Through a whole round trip, with the reconstructed SYN.
        let cookies = SynCookies::new(KEY);
        let mut s = syn(5, Some(1460));
        s.options.window_scale = Some(9);
        s.options.sack_permitted = true;
        s.options.timestamp = Some((123, 0));
        let opts = CookieOptions::from_syn(&s);
        let (iss, _) = cookies.iss(&tuple(40000), &s, T0);
        let a = ack_for(&s, iss, Some(cookie_timestamp(5000, opts)));
        let got = cookies.check(&tuple(40000), &a, T0).unwrap();
        assert_eq!(got.options, Some(opts));
        let rebuilt = got.reconstructed_syn(&a);
        assert_eq!(rebuilt.seq_number, 5);
        assert_eq!(rebuilt.options.mss, Some(1460));
        assert_eq!(rebuilt.options.window_scale, Some(9));
        assert!(rebuilt.options.sack_permitted);
        assert_eq!(rebuilt.options.timestamp, Some((777, 0)));
    }
}
