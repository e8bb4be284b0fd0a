//! IPv4 parser (and the ICMP-quoted variant); parsed headers round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use surge_stack::wire::{ChecksumMode, Ipv4Packet, Ipv4Repr, TxChecksum};

fuzz_target!(|data: &[u8]| {
    let _ = Ipv4Repr::parse_quoted(data);
    let packet = Ipv4Packet::new_unchecked(data);
    let _ = Ipv4Repr::parse(&packet, ChecksumMode::Verify);
    let Ok(repr) = Ipv4Repr::parse(&packet, ChecksumMode::Trust) else {
        return;
    };
    let _ = packet.payload();
    let mut buf = vec![0u8; repr.header_len() + repr.payload_len];
    repr.emit(
        &mut Ipv4Packet::new_unchecked(&mut buf[..]),
        TxChecksum::Compute,
    )
    .expect("emit");
    assert_eq!(
        Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&buf[..]), ChecksumMode::Verify),
        Ok(repr)
    );
});
