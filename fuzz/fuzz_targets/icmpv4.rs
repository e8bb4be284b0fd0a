//! ICMPv4 parser; parsed messages round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use surge_stack::wire::{ChecksumMode, Icmpv4Packet, Icmpv4Repr, TxChecksum};

fuzz_target!(|data: &[u8]| {
    let packet = Icmpv4Packet::new_unchecked(data);
    let _ = Icmpv4Repr::parse(&packet, ChecksumMode::Verify);
    let Ok(repr) = Icmpv4Repr::parse(&packet, ChecksumMode::Trust) else {
        return;
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(
        &mut Icmpv4Packet::new_unchecked(&mut buf[..]),
        TxChecksum::Compute,
    )
    .expect("emit");
    assert_eq!(
        Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&buf[..]), ChecksumMode::Verify),
        Ok(repr)
    );
});
