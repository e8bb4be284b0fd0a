#!/usr/bin/env python3
"""Writes the committed seed corpora (corpus/<target>/seed-*) from the kernel
capture in ../stack/tests/fixtures/kernel.pcap, plus one VLAN-tagged frame."""
import os, struct

here = os.path.dirname(os.path.abspath(__file__))
pcap = open(os.path.join(here, "../stack/tests/fixtures/kernel.pcap"), "rb").read()
frames, at = [], 24
while at < len(pcap):
    incl = struct.unpack_from("<I", pcap, at + 8)[0]
    frames.append(pcap[at + 16:at + 16 + incl])
    at += 16 + incl

def ip_payload(f):
    ihl = (f[14] & 0x0F) * 4
    return f[14 + ihl:14 + struct.unpack_from(">H", f, 16)[0]]

names = {0: "arp-request", 1: "arp-reply", 2: "icmp-echo", 4: "tcp-syn", 5: "tcp-synack",
         7: "tcp-data-ts", 12: "udp", 13: "icmp-port-unreachable", 15: "ipv4-fragment"}
vlan = frames[0][:12] + b"\x81\x00\x00\x0a" + frames[0][12:]
seeds = {t: {} for t in ["frame", "ethernet", "arp", "ipv4", "icmpv4", "udp", "tcp"]}
for i, name in names.items():
    f = frames[i]
    seeds["frame"][name] = f
    if i in (0, 1):
        seeds["arp"][name] = f[14:]
        continue
    seeds["ipv4"][name] = f[14:]
    proto = {1: "icmpv4", 6: "tcp", 17: "udp"}[f[23]]
    if i != 15:
        seeds[proto][name] = ip_payload(f)
seeds["frame"]["vlan-arp"] = vlan
seeds["ethernet"] = {"vlan-arp": vlan, "ipv4-tcp": frames[4], "arp": frames[0]}
for target, files in seeds.items():
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        open(os.path.join(d, "seed-" + name), "wb").write(data)
    print(target, len(files))

# The stateful engine target: records [op, dt, len_hi, len_lo, bytes...] (see
# fuzz_targets/engine.rs): a handshake to the listener, data, a closed port,
# UDP, ICMP, fragments in order and overlapping, ARP, clock steps.
def record(op, dt, body=b""):
    return bytes([op, dt]) + struct.pack(">H", len(body)) + body

def tcp(sport, dport, seq, ack, flags, payload=b"", options=b""):
    off = (20 + len(options)) // 4
    return struct.pack(">HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 65535, 0, 0) + options + payload

syn = tcp(40000, 80, 1000, 0, 0x02, options=b"\x02\x04\x05\xb4")
ack = tcp(40000, 80, 1001, 1, 0x10)
data = tcp(40000, 80, 1001, 1, 0x18, b"hello")
engine = {
    "handshake-data": b"\x01" + record(2, 1, syn) + record(6, 1) + record(2, 1, ack) + record(2, 1, data) + record(6, 1) + record(7, 1) + record(9, 2),
    "closed-port-udp-icmp": b"\x01" + record(2, 1, tcp(40001, 81, 5, 0, 0x02)) + record(3, 1, struct.pack(">HHHH", 5000, 53, 12, 0) + b"abcd") + record(3, 1, struct.pack(">HHHH", 5000, 54, 12, 0) + b"abcd") + record(4, 1, b"\x08\x00\x00\x00\x00\x01\x00\x01ping") + record(8, 1, b"out"),
    "fragments": b"\x01" + record(5, 1, b"\x20\x00\x06" + syn[:16]) + record(5, 1, b"\x00\x02\x06" + syn[16:]) + record(5, 1, b"\x20\x00\x06" + syn[:16]) + record(5, 1, b"\x00\x01\x06" + syn[8:]) + record(9, 40),
    "arp": b"\x00" + record(0x15, 1, bytes.fromhex("0001080006040001020000000002c6120002000000000000c612000a")),
}
d = os.path.join(here, "corpus", "engine")
os.makedirs(d, exist_ok=True)
for name, blob in engine.items():
    open(os.path.join(d, "seed-" + name), "wb").write(blob)
print("engine", len(engine))
