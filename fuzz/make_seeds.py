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
