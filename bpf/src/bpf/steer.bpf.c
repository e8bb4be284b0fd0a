// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * surge's XDP steering program.
 *
 * Frames that belong to surge go to the AF_XDP socket of the receiving queue
 * (XSKMAP slot ctx->rx_queue_index): ARP whose target is one of our
 * exclusive addresses, every IPv4 frame to an exclusive address, and IPv4 to
 * an address shared with the kernel for a TCP/UDP destination port we own
 * (the `ports` map or the ephemeral range in `config`) or ICMP when enabled. Everything else is XDP_PASS so the kernel keeps working on
 * the same interface. Truncated or malformed frames are counted and passed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "steer.h"

#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* Minimal header layouts (RFC 826, RFC 791), read only after bounds checks. */
struct arp_ipv4 {
	__be16 htype;
	__be16 ptype;
	__u8 hlen;
	__u8 plen;
	__be16 oper;
	__u8 sha[6];
	__u8 spa[4];
	__u8 tha[6];
	__u8 tpa[4];
} __attribute__((packed));

struct ipv4_hdr {
	__u8 ver_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__be16 check;
	__be32 saddr;
	__be32 daddr;
} __attribute__((packed));

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

/* Our IPv4 addresses (network byte order) -> ADDR_EXCLUSIVE or ADDR_SHARED. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} local_addrs SEC(".maps");

/* PORT_KEY(proto, port) -> 1 for every port we own. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steer_config);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* ARP frames passed to the kernel whose sender surge may know (a gratuitous
 * ARP, a neighbour's request for another host or for an address the kernel
 * shares with us): a copy goes to this ring, and surge's engine merges the
 * sender into its cache as RFC 826 asks of every host that sees the frame.
 * XDP cannot both pass a frame and redirect it, so the copy is how surge
 * sees it. A full ring loses the copy (counted), never the frame. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, ARP_SEEN_RING_BYTES);
} arp_seen SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &slot);
	if (value)
		*value += 1;
}

/* A copy of an ARP frame's first ARP_SEEN_LEN bytes (bounds checked by the
 * caller) to the `arp_seen` ring, counted. */
static __always_inline void copy_arp(const void *frame)
{
	void *record = bpf_ringbuf_reserve(&arp_seen, ARP_SEEN_LEN, 0);
	if (!record) {
		count(CNT_ARP_COPY_LOST);
		return;
	}
	__builtin_memcpy(record, frame, ARP_SEEN_LEN);
	/* Nobody sleeps on the ring: the engine polls it. */
	bpf_ringbuf_submit(record, BPF_RB_NO_WAKEUP);
	count(CNT_ARP_COPIED);
}

static __always_inline int pass(__u32 slot)
{
	count(slot);
	return XDP_PASS;
}

static __always_inline int redirect(struct xdp_md *ctx, __u32 slot)
{
	/* No socket on this queue: fall back to the kernel, counted. */
	int verdict = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
	count(verdict == XDP_REDIRECT ? slot : CNT_PASS_NO_SOCKET);
	return verdict;
}

/* 0 if not ours, else ADDR_EXCLUSIVE or ADDR_SHARED. */
static __always_inline __u8 local_kind(const void *addr4)
{
	__u32 key;
	__builtin_memcpy(&key, addr4, 4);
	__u8 *kind = bpf_map_lookup_elem(&local_addrs, &key);
	return kind ? *kind : 0;
}

static __always_inline int port_owned(__u8 proto, __u16 port)
{
	__u32 key = PORT_KEY(proto, port);
	if (bpf_map_lookup_elem(&ports, &key))
		return 1;
	__u32 zero = 0;
	struct steer_config *cfg = bpf_map_lookup_elem(&config, &zero);
	return cfg && cfg->ephemeral_hi != 0 && port >= cfg->ephemeral_lo && port <= cfg->ephemeral_hi;
}

/* The counter of a frame redirected because its address is surge's alone. */
static __always_inline __u32 exclusive_slot(const struct ipv4_hdr *ip)
{
	if ((ip->ver_ihl >> 4) != 4 || (ip->ver_ihl & 0x0f) < 5 || (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		return CNT_REDIRECT_OTHER;
	switch (ip->protocol) {
	case IPPROTO_TCP:
		return CNT_REDIRECT_TCP;
	case IPPROTO_UDP:
		return CNT_REDIRECT_UDP;
	case IPPROTO_ICMP:
		return CNT_REDIRECT_ICMP;
	default:
		return CNT_REDIRECT_OTHER;
	}
}

/* "xdp.frags": loaded with BPF_F_XDP_HAS_FRAGS, so it may see multi-buffer
 * packets (an MTU above a page, as for jumbo frames: a veth refuses a
 * program without it once its MTU passes about 3.5 KiB). ctx->data..data_end
 * is the packet's first buffer only; every header read below lies in the
 * first 38 bytes (Ethernet + IPv4 + the L4 ports, or an ARP body), which a
 * driver always puts there. Where it does not, the bounds checks fail and the
 * frame goes to the kernel, counted as malformed. */
SEC("xdp.frags")
int surge_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return pass(CNT_PASS_MALFORMED);

	if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
		struct arp_ipv4 *arp = (void *)(eth + 1);
		if ((void *)(arp + 1) > data_end)
			return pass(CNT_PASS_MALFORMED);
		/* RFC 826: Ethernet/IPv4 ARP only. */
		if (arp->htype != bpf_htons(1) || arp->ptype != bpf_htons(ETH_P_IP) || arp->hlen != 6 || arp->plen != 4)
			return pass(CNT_PASS_MALFORMED);
		__u8 kind = local_kind(arp->tpa);
		if (kind == ADDR_EXCLUSIVE)
			return redirect(ctx, CNT_REDIRECT_ARP);
		/* A probe (sender 0.0.0.0, RFC 5227) teaches nothing. */
		if (arp->spa[0] | arp->spa[1] | arp->spa[2] | arp->spa[3])
			copy_arp(data);
		/* The kernel answers ARP for an address it shares with us (same MAC). */
		return pass(kind == ADDR_SHARED ? CNT_PASS_ARP_SHARED : CNT_PASS_ARP_OTHER);
	}

	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return pass(CNT_PASS_OTHER_ETHERTYPE);

	struct ipv4_hdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return pass(CNT_PASS_MALFORMED);
	__u8 kind = local_kind(&ip->daddr);
	if (!kind)
		return pass(CNT_PASS_OTHER_ADDR);
	/* An address only surge has: every IPv4 frame to it is surge's, whatever
	 * its port, protocol or shape. Closed ports get surge's RST or ICMP port
	 * unreachable (RFC 9293 §3.10.7.1, RFC 1122 §4.1.3.1), fragments meet
	 * surge's reassembly, malformed headers are dropped and counted by reason. */
	if (kind == ADDR_EXCLUSIVE)
		return redirect(ctx, exclusive_slot(ip));
	/* RFC 791 §3.1: version 4, IHL at least 5 words. */
	__u32 ihl = ip->ver_ihl & 0x0f;
	if ((ip->ver_ihl >> 4) != 4 || ihl < 5)
		return pass(CNT_PASS_MALFORMED);
	/* Fragments carry no (or a partial) L4 header: on a shared address the
	 * kernel reassembles them. */
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return pass(CNT_PASS_FRAGMENT);

	__u8 proto = ip->protocol;
	if (proto == IPPROTO_ICMP) {
		__u32 zero = 0;
		struct steer_config *cfg = bpf_map_lookup_elem(&config, &zero);
		if (cfg && cfg->icmp)
			return redirect(ctx, CNT_REDIRECT_ICMP);
		return pass(CNT_PASS_PROTO_NOT_OWNED);
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return pass(CNT_PASS_PROTO_NOT_OWNED);

	/* Source and destination ports are the first 4 bytes of TCP and UDP. */
	__u8 *l4 = (__u8 *)ip + ihl * 4;
	if ((void *)(l4 + 4) > data_end)
		return pass(CNT_PASS_MALFORMED);
	__u16 dport = ((__u16)l4[2] << 8) | l4[3];
	if (!port_owned(proto, dport))
		return pass(CNT_PASS_PORT_NOT_OWNED);
	return redirect(ctx, proto == IPPROTO_TCP ? CNT_REDIRECT_TCP : CNT_REDIRECT_UDP);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
