//! Whole-frame parse as the stack does it; whatever parses must re-emit and parse
//! back to the same frame (TCP SACK blocks that do not fit beside the other
//! options are dropped on emit, and the IPv4 length follows the re-emitted
//! transport header).
#![no_main]

use libfuzzer_sys::fuzz_target;
use surge_stack::wire::frame::{Network, Transport, parse_frame};
use surge_stack::wire::{ChecksumMode, TxChecksum};

fuzz_target!(|data: &[u8]| {
    let _ = parse_frame(data, ChecksumMode::Verify);
    let Ok(frame) = parse_frame(data, ChecksumMode::Trust) else {
        return;
    };
    let mut buf = vec![0u8; frame.buffer_len()];
    let n = frame
        .emit(&mut buf, TxChecksum::Compute)
        .expect("a parsed frame emits");
    assert_eq!(n, buf.len());
    let reparsed = parse_frame(&buf, ChecksumMode::Verify).expect("a re-emitted frame parses");
    let mut want = frame;
    if let Network::Ipv4 { header, transport } = &mut want.network {
        if let Transport::Tcp { header: tcp, .. } = transport {
            tcp.options
                .sack_blocks
                .truncate(tcp.options.emitted_sack_blocks());
        }
        header.payload_len = transport.buffer_len();
    }
    assert_eq!(reparsed, want);
});
