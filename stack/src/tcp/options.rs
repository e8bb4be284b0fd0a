//! Option negotiation on SYN (RFC 9293 §3.7.1 MSS, RFC 7323 window scale and timestamps,
//! RFC 2018 SACK-permitted) and the segment-size arithmetic that follows from it.

use super::tcb::Tcb;
use crate::time::Instant;
use crate::wire::TcpRepr;

/// RFC 9293 §3.7.1: the send MSS when the peer sends no MSS option.
pub const DEFAULT_MSS: u16 = 536;

/// RFC 7323 §2.3: the largest shift count.
pub const MAX_WINDOW_SHIFT: u8 = 14;

/// Bytes the timestamps option occupies (10, padded to 12).
pub const TIMESTAMP_OPTION_LEN: u32 = 12;

/// Header length in bytes for a segment with `repr`'s options (20 + options, padded to 4).
pub fn header_len(repr: &TcpRepr) -> usize {
    let o = &repr.options;
    let mut len = 0;
    if o.mss.is_some() {
        len += 4;
    }
    if o.window_scale.is_some() {
        len += 3;
    }
    if o.sack_permitted {
        len += 2;
    }
    if o.timestamp.is_some() {
        len += 10;
    }
    if !o.sack_blocks.is_empty() {
        len += 2 + 8 * o.sack_blocks.len();
    }
    20 + len.div_ceil(4) * 4
}

impl Tcb {
    /// Applies the options of the peer's SYN (or SYN-ACK).
    pub(super) fn negotiate(&mut self, now: Instant, syn: &TcpRepr) {
        let o = &syn.options;
        // RFC 7323 §2.2: scaling is on only when both sides sent the option.
        match o.window_scale {
            Some(shift) if self.cfg.window_scaling => {
                // RFC 7323 §2.3: a shift above 14 is used as 14.
                self.wscale_ok = true;
                self.snd_wscale = shift.min(MAX_WINDOW_SHIFT);
                self.rcv_wscale = self.cfg.recv_window_shift();
                // A buffer smaller than one window unit could never open its window.
                self.recv_buf.grow_capacity(1 << self.rcv_wscale);
            }
            _ => {
                self.wscale_ok = false;
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
            }
        }
        // RFC 7323 §3.2: timestamps only when both SYNs carried the option.
        match o.timestamp {
            Some((tsval, _)) if self.cfg.timestamps => {
                self.ts_enabled = true;
                self.ts_recent = tsval;
                self.ts_recent_age = now;
            }
            _ => self.ts_enabled = false,
        }
        self.negotiate_ecn(syn);
        // RFC 2018 §2: SACK only when the peer sent SACK-permitted.
        self.sack_ok = self.cfg.sack && o.sack_permitted;
        if self.cfg.congestion == super::CongestionAlgorithm::Bbr && !self.rack_mode() {
            // BBR's model needs SACK's delivery and loss accounting: CUBIC instead.
            let iw = self.cfg.initial_window.max(1).saturating_mul(self.snd_mss);
            self.cc = super::tcb::Controller::Cubic(Box::new(super::cubic::Cubic::new(iw)));
            self.cc_model = false;
        }
        // RFC 9293 §3.7.1: default 536 when absent; never below our floor.
        self.peer_mss = o.mss.unwrap_or(DEFAULT_MSS).max(self.cfg.min_mss);
        self.update_snd_mss();
        self.rcv_mss = self.snd_mss;
    }

    /// RFC 9293 §3.7.1: Eff.snd.MSS = min(SendMSS + 20, MMS_S) - TCP header (with options) - IP options.
    pub(super) fn update_snd_mss(&mut self) {
        let base = self
            .peer_mss
            .min(self.pmtu_mss)
            .min(self.cfg.mss)
            .max(self.cfg.min_mss);
        let overhead = if self.ts_enabled {
            TIMESTAMP_OPTION_LEN
        } else {
            0
        };
        let mss = u32::from(base).saturating_sub(overhead).max(1);
        if mss != self.snd_mss {
            self.snd_mss = mss;
            self.cc.on_mss_change(mss);
        }
    }

    /// Our timestamp clock (RFC 7323 §5.4): milliseconds plus the connection's offset (a
    /// keyed hash of the address pair plus the boot-time clock at engine start), so it
    /// increases across connections to the same peer and across restarts (needed for
    /// TIME-WAIT reuse on both ends).
    pub(super) fn ts_now(&self, now: Instant) -> u32 {
        // Truncation intended: the TS clock wraps modulo 2^32.
        (now.total_millis() as u32).wrapping_add(self.ts_offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_len_pads_to_four() {
        let mut r = TcpRepr::default();
        assert_eq!(header_len(&r), 20);
        r.options.mss = Some(1460);
        r.options.window_scale = Some(7);
        r.options.sack_permitted = true;
        r.options.timestamp = Some((1, 0));
        assert_eq!(header_len(&r), 40);
        let mut a = TcpRepr::default();
        a.options.timestamp = Some((1, 2));
        a.options.sack_blocks.push(1, 2);
        assert_eq!(header_len(&a), 40);
    }
}
