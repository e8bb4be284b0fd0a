//! TCP header and options parser; parsed segments round-trip with a computed
//! checksum (minus SACK blocks that do not fit beside the other options).
#![no_main]

use core::net::Ipv4Addr;
use libfuzzer_sys::fuzz_target;
use surge_stack::wire::{ChecksumMode, TcpOptions, TcpPacket, TcpRepr, TxChecksum, tcp};

const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fuzz_target!(|data: &[u8]| {
    let _ = TcpOptions::parse(data);
    let Ok(packet) = TcpPacket::new_checked(data) else {
        return;
    };
    let _ = TcpRepr::parse(&packet, SRC, DST, ChecksumMode::Verify);
    let Ok(repr) = TcpRepr::parse(&packet, SRC, DST, ChecksumMode::Trust) else {
        return;
    };
    let payload = packet.payload();
    let mut buf = vec![0u8; 60 + payload.len()];
    let n = repr
        .emit_segment(&mut buf, SRC, DST, payload, TxChecksum::Compute)
        .expect("emit");
    assert_eq!(n, repr.header_len() + payload.len());
    let again = TcpPacket::new_checked(&buf[..n]).expect("re-emitted segment is well formed");
    let mut want = repr;
    want.options
        .sack_blocks
        .truncate(repr.options.emitted_sack_blocks());
    assert_eq!(
        TcpRepr::parse(&again, SRC, DST, ChecksumMode::Verify),
        Ok(want)
    );
    assert_eq!(again.payload(), payload);
    let mut header = buf[..repr.header_len()].to_vec();
    header[16..18].copy_from_slice(&[0, 0]);
    assert_eq!(
        tcp::checksum_split(SRC, DST, &header, payload),
        again.checksum()
    );
});
