//! ARP parser; parsed packets round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use surge_stack::wire::{ArpPacket, ArpRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = ArpPacket::new_checked(data) else {
        return;
    };
    let Ok(repr) = ArpRepr::parse(&packet) else {
        return;
    };
    let mut buf = [0u8; 28];
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]))
        .expect("emit");
    assert_eq!(
        ArpRepr::parse(&ArpPacket::new_unchecked(&buf[..])),
        Ok(repr)
    );
});
