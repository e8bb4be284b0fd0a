//! UDP parser; parsed datagrams round-trip with a computed checksum.
#![no_main]

use core::net::Ipv4Addr;
use libfuzzer_sys::fuzz_target;
use surge_stack::wire::{ChecksumMode, TxChecksum, UdpPacket, UdpRepr};

const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = UdpPacket::new_checked(data) else {
        return;
    };
    let _ = UdpRepr::parse(&packet, SRC, DST, ChecksumMode::Verify);
    let Ok(repr) = UdpRepr::parse(&packet, SRC, DST, ChecksumMode::Trust) else {
        return;
    };
    let mut buf = vec![0u8; data.len()];
    let n = repr
        .emit_datagram(&mut buf, SRC, DST, packet.payload(), TxChecksum::Compute)
        .expect("emit");
    let again = UdpPacket::new_checked(&buf[..n]).expect("re-emitted datagram is well formed");
    assert_eq!(
        UdpRepr::parse(&again, SRC, DST, ChecksumMode::Verify),
        Ok(repr)
    );
    assert_eq!(again.payload(), packet.payload());
});
