//! sockperf's ping-pong over TCP (`surge serve --mode sockperf`), so `sockperf ping-pong
//! --tcp` can measure surge's server as it measures `sockperf server`.
//!
//! Every sockperf message starts with a 14-byte header in network byte order: a 64-bit
//! sequence number, 16 bits of flags and the 32-bit length of the whole message (header
//! included). A message with the client bit and the pong-request bit set is answered by the
//! same bytes with the client bit cleared; any other message (the warm-up messages, for
//! example) is read and dropped, as sockperf's own server does (checked against sockperf 3.7).

/// Bytes of the header: sequence number (8), flags (2), length (4).
pub const HEADER_LEN: usize = 14;
/// The flag of a message sent by a client.
const CLIENT: u16 = 1;
/// The flag of a message that asks for an answer.
const PONG_REQUEST: u16 = 2;
/// The largest message accepted (sockperf's own limit is 64 KiB of payload).
pub const MAX_MESSAGE_LEN: usize = 65_536 + HEADER_LEN;

/// A message whose length field is shorter than the header or above [`MAX_MESSAGE_LEN`].
#[derive(Debug, PartialEq, Eq)]
pub struct BadLength(pub u32);

/// Takes every complete message off the front of `input`, appending the answers to `out`;
/// returns the number of messages answered. A partial message stays in `input`.
pub fn answer(input: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<u64, BadLength> {
    let mut at = 0;
    let mut answered = 0;
    while let Some(header) = input.get(at..at + HEADER_LEN) {
        let flags = u16::from_be_bytes([header[8], header[9]]);
        let len = u32::from_be_bytes([header[10], header[11], header[12], header[13]]);
        let size = len as usize;
        if !(HEADER_LEN..=MAX_MESSAGE_LEN).contains(&size) {
            return Err(BadLength(len));
        }
        let Some(message) = input.get(at..at + size) else {
            break;
        };
        if flags & CLIENT != 0 && flags & PONG_REQUEST != 0 {
            let start = out.len();
            out.extend_from_slice(message);
            let reply_flags = (flags & !CLIENT).to_be_bytes();
            if let Some(slot) = out.get_mut(start + 8..start + 10) {
                slot.copy_from_slice(&reply_flags);
            }
            answered += 1;
        }
        at += size;
    }
    input.drain(..at);
    Ok(answered)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sockperf message: `seq`, `flags`, `len` bytes in all (payload 0xa5).
    fn message(seq: u64, flags: u16, len: u32) -> Vec<u8> {
        let mut m = seq.to_be_bytes().to_vec();
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&len.to_be_bytes());
        m.resize(len as usize, 0xa5);
        m
    }

    #[test]
    fn ping_is_answered_with_the_client_bit_cleared() {
        // The first message sockperf 3.7's `ping-pong --tcp -m 64` sends: seq 1, flags 3.
        let mut input = message(1, 3, 64);
        let mut out = Vec::new();
        assert_eq!(answer(&mut input, &mut out), Ok(1));
        assert!(input.is_empty());
        assert_eq!(out, message(1, 2, 64));
    }

    #[test]
    fn warmup_and_server_messages_are_not_answered() {
        // Client + warm-up (no pong request), then a server's own answer (flags 2).
        let mut input = message(1, 5, 64);
        input.extend(message(2, 2, 64));
        let mut out = Vec::new();
        assert_eq!(answer(&mut input, &mut out), Ok(0));
        assert!(input.is_empty() && out.is_empty());
    }

    #[test]
    fn partial_messages_wait_for_the_rest() {
        let whole = [message(7, 3, 64), message(8, 3, 100)].concat();
        let mut input = Vec::new();
        let mut out = Vec::new();
        let mut answered = 0;
        for chunk in whole.chunks(9) {
            input.extend_from_slice(chunk);
            answered += answer(&mut input, &mut out).expect("well formed");
        }
        assert_eq!(answered, 2);
        assert!(input.is_empty());
        assert_eq!(out, [message(7, 2, 64), message(8, 2, 100)].concat());
    }

    #[test]
    fn bad_lengths_are_refused() {
        for len in [0u32, 13, (MAX_MESSAGE_LEN + 1) as u32, u32::MAX] {
            let mut input = message(1, 3, 14);
            input[10..14].copy_from_slice(&len.to_be_bytes());
            assert_eq!(answer(&mut input, &mut Vec::new()), Err(BadLength(len)));
        }
    }
}
