#!/usr/bin/python3
"""Hostile frames for surge's robustness suite (stack/tests/hostile_lab.rs).

Runs in host B's namespace of a lab. Two commands:

  hostile.py list
      prints every case name, one a line.
  hostile.py run IFACE SRC_MAC SRC_IP TARGET_IP TARGET_MAC OPEN_PORT CLOSED_PORT
      prints "ready", then reads case names from stdin, one a line; for each it
      sends the case's frames from SRC_MAC/SRC_IP (an address of the link that
      no kernel owns, so no kernel answers on its behalf), collects what
      TARGET_MAC sends back, checks that a kernel TCP connection from host B
      to TARGET_IP:OPEN_PORT (opened at start) still echoes, and prints
        result NAME ANSWER SIDE CONN
      ANSWER: the replies, classified ("synack", "rst", "rstack", "ack",
      "icmp_3_3", "arp_reply", "arp_announce", "udp", "none"), joined by "+";
      SIDE: "side_ok" or "side_broken"; CONN: for cases on an established
      connection, "alive" or "dead" after the case, else "na".
  hostile.py serve ADDR PORT
      a kernel TCP and UDP echo server (the oracle's server), until killed.

Everything is bounded: each reply window is a fraction of a second, and
every command exits by itself after LIFETIME seconds (the caller kills it
sooner).
"""

import os
import random
import select
import socket
import sys
import threading
import time

from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, Raw, conf)

conf.verb = 0
REPLY_WINDOW = 0.35
LIFETIME = 300
OPEN = 7
CLOSED = 9


class Ctx:
    """What a case needs: addresses, ports, a fresh source port and sequence."""

    def __init__(self, src_mac, src_ip, dst_ip, dst_mac):
        self.src_mac, self.src_ip = src_mac, src_ip
        self.dst_ip, self.dst_mac = dst_ip, dst_mac
        self.sport = random.randint(20000, 60000)
        self.seq = random.randint(1, 1 << 30)

    def eth(self, **kw):
        return Ether(src=self.src_mac, dst=self.dst_mac, **kw)

    def ip(self, **kw):
        kw.setdefault("src", self.src_ip)
        kw.setdefault("dst", self.dst_ip)
        return IP(**kw)

    def syn(self, dport=OPEN, flags="S", options=None, **kw):
        return TCP(sport=self.sport, dport=dport, flags=flags, seq=self.seq,
                   window=64240, options=options if options is not None else [("MSS", 1460)], **kw)


def raw_ip_bytes(ctx, payload, **kw):
    """An IPv4 header with explicit fields over `payload`, checksum filled."""
    return bytes(ctx.ip(**kw) / Raw(payload))


# --- the cases: name -> builder(ctx) returning frames (bytes) to send -------

def tcp_bytes(ctx, dport=OPEN, flags="S", options=None, payload=b""):
    return bytes(ctx.ip(proto=6) / ctx.syn(dport=dport, flags=flags, options=options) / Raw(payload))


def frame(ctx, ip_packet_bytes):
    return bytes(ctx.eth(type=0x0800)) + ip_packet_bytes


def patch(data, offset, new):
    return data[:offset] + bytes(new) + data[offset + len(new):]


def ip_fix_checksum(ipb):
    ipb = patch(ipb, 10, [0, 0])
    ihl = (ipb[0] & 0x0f) * 4
    s = 0
    head = ipb[:max(ihl, 20)]
    for i in range(0, len(head) - 1, 2):
        s += (head[i] << 8) | head[i + 1]
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return patch(ipb, 10, ((~s) & 0xffff).to_bytes(2, "big"))


def syn_frame(ctx, **tcp):
    return frame(ctx, tcp_bytes(ctx, **tcp))


def arp_frame(ctx, op=1, psrc=None, pdst=None, hwsrc=None, dst="ff:ff:ff:ff:ff:ff", **kw):
    return bytes(Ether(src=ctx.src_mac, dst=dst) /
                 ARP(op=op, hwsrc=hwsrc or ctx.src_mac, psrc=psrc or ctx.src_ip,
                     pdst=pdst or ctx.dst_ip, **kw))


def tcp_with_options(ctx, raw_options):
    """A SYN whose option bytes are exactly `raw_options` (padded to 4)."""
    raw_options += b"\x00" * (-len(raw_options) % 4)
    t = bytes(TCP(sport=ctx.sport, dport=OPEN, flags="S", seq=ctx.seq, window=64240,
                  dataofs=5 + len(raw_options) // 4) / Raw(raw_options))
    # scapy computes the checksum over the header as given (options as payload).
    return frame(ctx, bytes(ctx.ip(proto=6) / Raw(t_with_checksum(ctx, t))))


def t_with_checksum(ctx, segment):
    seg = patch(segment, 16, [0, 0])
    pseudo = socket.inet_aton(ctx.src_ip) + socket.inet_aton(ctx.dst_ip) + bytes([0, 6]) + len(seg).to_bytes(2, "big")
    data = pseudo + seg + (b"\x00" if len(seg) % 2 else b"")
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return patch(seg, 16, ((~s) & 0xffff).to_bytes(2, "big"))


def fragments(ctx, l4, proto, pieces):
    """IPv4 fragments of the transport bytes `l4`: `pieces` is a list of
    (offset in bytes, length, more_fragments), in sending order."""
    ident = random.randint(1, 65535)
    out = []
    for off, length, mf in pieces:
        chunk = l4[off:off + length]
        p = ctx.ip(proto=proto, id=ident, flags="MF" if mf else 0, frag=off // 8) / Raw(chunk)
        out.append(frame(ctx, bytes(p)))
    return out


def syn_for_fragments(ctx, dport=OPEN):
    """The TCP bytes of a SYN with a 40-byte header (so it splits at 24 / 16)."""
    opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]
    tcp = TCP(sport=ctx.sport, dport=dport, flags="S", seq=ctx.seq, window=64240, options=opts)
    return bytes(ctx.ip(proto=6) / tcp)[20:]


def udp_ip(ctx, dport, payload=b"hostile", **kw):
    """An IPv4 packet carrying a UDP datagram (checksum filled unless given)."""
    return bytes(ctx.ip(proto=17) / UDP(sport=ctx.sport, dport=dport, **kw) / Raw(payload))


def udp_l4(ctx, dport, payload=b"hostile"):
    return udp_ip(ctx, dport, payload)[20:]


def with_ip_options(ipb, options):
    """`ipb` with `options` (a multiple of 4 bytes) after its 20-byte header."""
    total = int.from_bytes(ipb[2:4], "big") + len(options)
    ipb = ipb[:20] + options + ipb[20:]
    ipb = patch(ipb, 0, [0x40 | (5 + len(options) // 4)])
    return ip_fix_checksum(patch(ipb, 2, total.to_bytes(2, "big")))


CASES = {}


def case(name):
    def register(f):
        CASES[name] = f
        return f
    return register


# Ethernet and ARP
case("arp_request_for_target")(lambda c: [arp_frame(c)])
case("arp_probe_for_target")(lambda c: [arp_frame(c, psrc="0.0.0.0")])
case("arp_request_for_other_address")(lambda c: [arp_frame(c, pdst="198.18.0.99")])
case("arp_truncated")(lambda c: [arp_frame(c)[:14 + 20]])
case("arp_bad_hardware_length")(lambda c: [arp_frame(c, hwlen=8)[:14 + 28]])
case("arp_spoofing_target_address")(lambda c: [arp_frame(c, psrc=c.dst_ip, pdst=c.dst_ip)])
case("eth_header_only")(lambda c: [bytes(c.eth(type=0x0800))])
case("eth_ipv6_ethertype")(lambda c: [bytes(c.eth(type=0x86dd)) + b"\x60" + b"\x00" * 39])
case("eth_vlan_tagged_syn")(lambda c: [bytes(c.eth() / Dot1Q(vlan=5) / c.ip(proto=6) / c.syn())])
case("eth_full_size_frame")(lambda c: [syn_frame(c, payload=b"\xa5" * 1456)])

# IPv4 header
case("ip_truncated_header")(lambda c: [frame(c, tcp_bytes(c)[:12])])
case("ip_version_6")(lambda c: [frame(c, ip_fix_checksum(patch(tcp_bytes(c), 0, [0x65])))])
case("ip_header_length_4")(lambda c: [frame(c, ip_fix_checksum(patch(tcp_bytes(c), 0, [0x44])))])
case("ip_header_length_past_end")(lambda c: [frame(c, ip_fix_checksum(patch(tcp_bytes(c), 0, [0x4f])[:40]))])
case("ip_total_length_past_end")(lambda c: [frame(c, ip_fix_checksum(patch(tcp_bytes(c), 2, (400).to_bytes(2, "big"))))])
case("ip_total_length_65535")(lambda c: [frame(c, ip_fix_checksum(patch(tcp_bytes(c), 2, (65535).to_bytes(2, "big"))))])
case("ip_total_length_below_header")(lambda c: [frame(c, ip_fix_checksum(patch(tcp_bytes(c), 2, (16).to_bytes(2, "big"))))])
case("ip_bad_checksum")(lambda c: [frame(c, patch(tcp_bytes(c), 10, [0xde, 0xad]))])
case("ip_padding_after_total_length")(lambda c: [syn_frame(c) + b"\x00" * 10])
case("ip_source_broadcast")(lambda c: [frame(c, bytes(c.ip(proto=6, src="255.255.255.255") / c.syn()))])
case("ip_source_multicast")(lambda c: [frame(c, bytes(c.ip(proto=6, src="224.0.0.9") / c.syn()))])
case("ip_source_is_target")(lambda c: [frame(c, bytes(c.ip(proto=6, src=c.dst_ip) / c.syn()))])
case("ip_source_zero")(lambda c: [frame(c, bytes(c.ip(proto=6, src="0.0.0.0") / c.syn()))])
case("ip_unknown_protocol")(lambda c: [frame(c, bytes(c.ip(proto=253) / Raw(b"\x00" * 20)))])
case("ip_options_nop_eol")(lambda c: [frame(c, with_ip_options(tcp_bytes(c), b"\x01\x01\x01\x00"))])
case("ip_ttl_zero")(lambda c: [frame(c, bytes(c.ip(proto=6, ttl=0) / c.syn()))])

# TCP to a listener and to a closed port
case("tcp_syn_open_port")(lambda c: [syn_frame(c)])
case("tcp_syn_closed_port")(lambda c: [syn_frame(c, dport=CLOSED)])
case("tcp_ack_closed_port")(lambda c: [syn_frame(c, dport=CLOSED, flags="A")])
case("tcp_fin_closed_port")(lambda c: [syn_frame(c, dport=CLOSED, flags="F", options=[])])
case("tcp_data_closed_port")(lambda c: [syn_frame(c, dport=CLOSED, flags="PA", options=[], payload=b"hello")])
case("tcp_rst_closed_port")(lambda c: [syn_frame(c, dport=CLOSED, flags="R", options=[])])
case("tcp_syn_fin_open_port")(lambda c: [syn_frame(c, flags="SF")])
case("tcp_syn_rst_open_port")(lambda c: [syn_frame(c, flags="SR")])
case("tcp_no_flags_open_port")(lambda c: [syn_frame(c, flags="", options=[])])
case("tcp_xmas_open_port")(lambda c: [syn_frame(c, flags="FPU", options=[])])
case("tcp_ack_open_port")(lambda c: [syn_frame(c, flags="A", options=[])])
case("tcp_syn_ack_open_port")(lambda c: [syn_frame(c, flags="SA")])
case("tcp_bad_checksum")(lambda c: [frame(c, patch(tcp_bytes(c), 20 + 16, [0xde, 0xad]))])
case("tcp_data_offset_4")(lambda c: [frame(c, bytes(c.ip(proto=6) / Raw(t_with_checksum(c, patch(bytes(TCP(sport=c.sport, dport=OPEN, flags="S", seq=c.seq)), 12, [0x40])))))])
case("tcp_data_offset_past_end")(lambda c: [frame(c, bytes(c.ip(proto=6) / Raw(t_with_checksum(c, patch(bytes(TCP(sport=c.sport, dport=OPEN, flags="S", seq=c.seq)), 12, [0xf0])))))])
case("tcp_header_truncated")(lambda c: [frame(c, bytes(c.ip(proto=6) / Raw(bytes(c.syn())[:10])))])
case("tcp_option_length_0")(lambda c: [tcp_with_options(c, b"\x02\x00\x05\xb4")])
case("tcp_option_length_1")(lambda c: [tcp_with_options(c, b"\x08\x01\x00\x00")])
case("tcp_option_overlong")(lambda c: [tcp_with_options(c, b"\x02\x04\x05\xb4\x08\x28\x00\x00")])
case("tcp_mss_wrong_length")(lambda c: [tcp_with_options(c, b"\x02\x03\x05\x01")])
case("tcp_window_scale_200")(lambda c: [tcp_with_options(c, b"\x02\x04\x05\xb4\x01\x03\x03\xc8")])
case("tcp_syn_with_data")(lambda c: [syn_frame(c, payload=b"early data")])

# ICMP
case("icmp_echo_request")(lambda c: [frame(c, bytes(c.ip(proto=1) / ICMP(type=8, id=7, seq=1) / Raw(b"ping")))])
case("icmp_echo_bad_checksum")(lambda c: [frame(c, bytes(c.ip(proto=1) / ICMP(type=8, id=7, seq=1, chksum=0x1234) / Raw(b"ping")))])
case("icmp_truncated")(lambda c: [frame(c, bytes(c.ip(proto=1) / Raw(b"\x08\x00\xf7")))])
case("icmp_unknown_type")(lambda c: [frame(c, bytes(c.ip(proto=1) / ICMP(type=42, code=0) / Raw(b"\x00" * 8)))])
case("icmp_unreachable_forged_tcp")(lambda c: [frame(c, bytes(
    c.ip(proto=1) / ICMP(type=3, code=1) /
    IP(src=c.dst_ip, dst=c.src_ip, proto=6) / TCP(sport=OPEN, dport=c.sport, seq=12345, flags="SA")))])
case("icmp_unreachable_quote_too_short")(lambda c: [frame(c, bytes(
    c.ip(proto=1) / ICMP(type=3, code=1) / Raw(bytes(IP(src=c.dst_ip, dst=c.src_ip, proto=6))[:20])))])

# UDP
case("udp_closed_port")(lambda c: [frame(c, udp_ip(c, CLOSED))])
case("udp_zero_checksum_closed_port")(lambda c: [frame(c, patch(udp_ip(c, CLOSED), 20 + 6, [0, 0]))])
case("udp_bad_checksum")(lambda c: [frame(c, patch(udp_ip(c, OPEN), 20 + 6, [0xde, 0xad]))])
case("udp_length_past_end")(lambda c: [frame(c, patch(udp_ip(c, OPEN, chksum=0), 20 + 4, (200).to_bytes(2, "big")))])
case("udp_length_below_8")(lambda c: [frame(c, patch(udp_ip(c, OPEN, chksum=0), 20 + 4, (4).to_bytes(2, "big")))])
case("udp_open_port_echo")(lambda c: [frame(c, udp_ip(c, OPEN))])

# Fragments (RFC 791, RFC 815; overlaps drop the datagram, as RFC 5722 asks for IPv6)
case("fragments_syn_in_order")(lambda c: fragments(c, syn_for_fragments(c), 6, [(0, 24, True), (24, 16, False)]))
case("fragments_syn_reversed")(lambda c: fragments(c, syn_for_fragments(c), 6, [(24, 16, False), (0, 24, True)]))
case("fragments_syn_three_pieces")(lambda c: fragments(c, syn_for_fragments(c), 6, [(0, 24, True), (32, 8, False), (24, 8, True)]))
case("fragments_last_only")(lambda c: fragments(c, syn_for_fragments(c), 6, [(24, 16, False)]))
case("fragments_udp_closed_port")(lambda c: fragments(c, udp_l4(c, CLOSED, payload=b"x" * 40), 17, [(0, 24, True), (24, 24, False)]))


def overlapping(c):
    """Two fragments of one datagram whose byte ranges overlap (8..24)."""
    l4 = syn_for_fragments(c)
    ident = random.randint(1, 65535)
    first = c.ip(proto=6, id=ident, flags="MF", frag=0) / Raw(l4[0:24])
    second = c.ip(proto=6, id=ident, frag=1) / Raw(l4[8:40])
    return [frame(c, bytes(first)), frame(c, bytes(second))]


CASES["fragments_syn_overlapping"] = overlapping
case("fragments_syn_tiny_first")(lambda c: fragments(c, syn_for_fragments(c), 6, [(0, 8, True), (8, 32, False)]))

# On an established connection (RFC 5961, RFC 9293 §3.10.7.4): builder(ctx, conn)
ESTABLISHED = {}


def established(name):
    def register(f):
        ESTABLISHED[name] = f
        return f
    return register


def seg(c, conn, flags, seq=None, ack=None, payload=b""):
    # Sequence arithmetic wraps: an offset added to an ISN near 2^32 must not leave
    # the 32-bit field (scapy raises struct.error, and the case fails as unanswered).
    return frame(c, bytes(c.ip(proto=6) / TCP(sport=c.sport, dport=OPEN, flags=flags,
                                                seq=(conn["seq"] if seq is None else seq) % 2**32,
                                                ack=(conn["ack"] if ack is None else ack) % 2**32,
                                                window=64240) / Raw(payload)))


established("est_rst_out_of_window")(lambda c, k: [seg(c, k, "R", seq=k["seq"] + 10_000_000)])
established("est_rst_in_window_not_exact")(lambda c, k: [seg(c, k, "R", seq=k["seq"] + 100)])
established("est_rst_exact")(lambda c, k: [seg(c, k, "R")])
established("est_syn_in_window")(lambda c, k: [seg(c, k, "S", seq=k["seq"] + 100, ack=0)])
established("est_data_beyond_window")(lambda c, k: [seg(c, k, "PA", seq=k["seq"] + 10_000_000, payload=b"far")])
established("est_ack_of_unsent_data")(lambda c, k: [seg(c, k, "A", ack=k["ack"] + 1_000_000)])
established("est_data_in_window")(lambda c, k: [seg(c, k, "PA", payload=b"data")])
established("est_icmp_frag_needed_bad_seq")(lambda c, k: [frame(c, bytes(
    c.ip(proto=1) / ICMP(type=3, code=4, nexthopmtu=576) /
    IP(src=c.dst_ip, dst=c.src_ip, proto=6) / TCP(sport=OPEN, dport=c.sport, seq=(k["ack"] + 50_000_000) % 2**32)))])
established("est_icmp_port_unreachable_in_window")(lambda c, k: [frame(c, bytes(
    c.ip(proto=1) / ICMP(type=3, code=3) /
    IP(src=c.dst_ip, dst=c.src_ip, proto=6) / TCP(sport=OPEN, dport=c.sport, seq=k["ack"])))])


# --- running ---------------------------------------------------------------

class Wire:
    """One raw socket on the interface: send frames, collect the target's replies."""

    def __init__(self, iface, target_mac, src_ip, src_mac):
        self.sock = conf.L2socket(iface=iface)
        self.target_mac = target_mac.lower()
        self.src_ip, self.src_mac = src_ip, src_mac

    def send(self, data):
        try:
            self.sock.send(Raw(data))
        except OSError as e:
            print("send failed: %s (%d bytes)" % (e, len(data)), file=sys.stderr, flush=True)

    def collect(self, window, sport=None, stop=None):
        """Frames from the target to our spoofed address during `window` seconds."""
        got = []
        end = time.time() + window
        while time.time() < end:
            r, _, _ = select.select([self.sock], [], [], max(0.0, end - time.time()))
            if not r:
                break
            p = self.sock.recv()
            if p is None or Ether not in p or p[Ether].src.lower() != self.target_mac:
                continue
            if ARP in p:
                a = p[ARP]
                if a.op == 2 and a.pdst in (self.src_ip, "0.0.0.0"):
                    got.append(p)
                elif a.op == 1 and a.psrc == a.pdst:
                    got.append(p)
                continue
            if IP not in p or p[IP].dst != self.src_ip:
                continue
            if TCP in p and sport is not None and p[TCP].dport != sport:
                continue
            got.append(p)
            if stop is not None and stop(p):
                break
        return got


def classify(p):
    if ARP in p:
        return "arp_reply" if p[ARP].op == 2 else "arp_announce"
    if ICMP in p:
        return "icmp_%d_%d" % (p[ICMP].type, p[ICMP].code)
    if TCP in p:
        f = p[TCP].flags
        if f.R:
            return "rstack" if f.A else "rst"
        if f.S and f.A:
            return "synack"
        if f.S:
            return "syn"
        if f.F:
            return "fin"
        if f.A:
            return "ack"
        return "tcp_other"
    if UDP in p:
        return "udp"
    return "ip_other"


def answer_of(packets):
    kinds = sorted({classify(p) for p in packets})
    return "+".join(kinds) if kinds else "none"


def clean_up_half_open(wire, ctx, packets):
    """A SYN-ACK we will not complete: reset it so it is not retransmitted."""
    for p in packets:
        if TCP in p and p[TCP].flags.S and p[TCP].flags.A:
            wire.send(bytes(ctx.eth(type=0x0800) / ctx.ip(proto=6) /
                            TCP(sport=ctx.sport, dport=p[TCP].sport, flags="R", seq=p[TCP].ack)))


def handshake(wire, ctx):
    wire.send(syn_frame(ctx))
    replies = wire.collect(1.5, sport=ctx.sport,
                           stop=lambda p: TCP in p and p[TCP].flags.S and p[TCP].flags.A)
    synack = [p for p in replies if TCP in p and p[TCP].flags.S and p[TCP].flags.A]
    if not synack:
        return None
    conn = {"seq": (ctx.seq + 1) % 2**32, "ack": (synack[0][TCP].seq + 1) % 2**32}
    wire.send(seg(ctx, conn, "A"))
    time.sleep(0.05)
    return conn


def alive(wire, ctx, conn, sent_data):
    """Data in window gets acknowledged: the connection survived."""
    seq = (conn["seq"] + sent_data) % 2**32
    wire.send(seg(ctx, conn, "PA", seq=seq, payload=b"live"))
    want = (seq + 4) % 2**32
    got = wire.collect(1.0, sport=ctx.sport,
                       stop=lambda p: TCP in p and p[TCP].flags.A and p[TCP].ack == want)
    ok = any(TCP in p and p[TCP].flags.A and not p[TCP].flags.R and p[TCP].ack == want for p in got)
    # Leave nothing behind: reset it.
    wire.send(seg(ctx, conn, "R", seq=want))
    return ok


def run_case(wire, name, ctx):
    if name in CASES:
        frames = CASES[name](ctx)
        for f in frames:
            wire.send(f)
        got = wire.collect(REPLY_WINDOW, sport=ctx.sport)
        clean_up_half_open(wire, ctx, got)
        return answer_of(got), "na"
    conn = handshake(wire, ctx)
    if conn is None:
        return "no_handshake", "dead"
    for f in ESTABLISHED[name](ctx, conn):
        wire.send(f)
    got = wire.collect(REPLY_WINDOW, sport=ctx.sport)
    sent_data = 4 if name == "est_data_in_window" else 0
    # The echo of our data is an answer too; what matters is its kind.
    return answer_of(got), "alive" if alive(wire, ctx, conn, sent_data) else "dead"


def side_ok(side):
    try:
        side.sendall(b"x")
        return side.recv(1) == b"x"
    except OSError:
        return False


def run(argv):
    iface, src_mac, src_ip, dst_ip, dst_mac = argv[:5]
    global OPEN, CLOSED
    OPEN, CLOSED = int(argv[5]), int(argv[6])
    wire = Wire(iface, dst_mac, src_ip, src_mac)
    side = socket.create_connection((dst_ip, OPEN), timeout=5)
    side.settimeout(2)
    print("ready", flush=True)
    for line in sys.stdin:
        name = line.strip()
        if not name:
            continue
        if name not in CASES and name not in ESTABLISHED:
            print("result %s unknown_case side_ok na" % name, flush=True)
            continue
        answer, conn = run_case(wire, name, Ctx(src_mac, src_ip, dst_ip, dst_mac))
        side_state = "side_ok" if side_ok(side) else "side_broken"
        print("result %s %s %s %s" % (name, answer, side_state, conn), flush=True)
    side.close()


def serve(addr, port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(128)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((addr, port))

    def echo_udp():
        while True:
            data, peer = udp.recvfrom(65536)
            udp.sendto(data, peer)

    def echo(c):
        c.settimeout(120)
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
        except OSError:
            pass
        c.close()

    threading.Thread(target=echo_udp, daemon=True).start()
    print("ready", flush=True)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()


def main():
    # Bounded whatever happens to the caller.
    watchdog = threading.Timer(LIFETIME, lambda: os._exit(3))
    watchdog.daemon = True
    watchdog.start()
    if sys.argv[1] == "list":
        for name in list(CASES) + list(ESTABLISHED):
            print(name)
    elif sys.argv[1] == "run":
        run(sys.argv[2:])
    elif sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("usage: hostile.py list | run ... | serve ADDR PORT")


if __name__ == "__main__":
    main()
