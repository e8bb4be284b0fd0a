//! Ethernet (and 802.1Q) parser; parsed headers round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use surge_stack::wire::{EthernetFrame, EthernetRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = EthernetFrame::new_checked(data) else {
        return;
    };
    let _ = (frame.payload(), frame.vlan_tag(), frame.ethertype());
    let Ok(repr) = EthernetRepr::parse(&frame) else {
        return;
    };
    let mut buf = [0u8; 18];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]))
        .expect("emit");
    assert_eq!(
        EthernetRepr::parse(&EthernetFrame::new_unchecked(&buf[..])),
        Ok(repr)
    );
});
