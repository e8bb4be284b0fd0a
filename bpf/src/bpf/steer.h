/* Shared between steer.bpf.c and the Rust loader (bpf/src/maps.rs mirrors it). */
#ifndef SURGE_STEER_H
#define SURGE_STEER_H

/* Counter slots of the per-CPU `counters` array: one per verdict and reason. */
enum steer_counter {
	CNT_REDIRECT_ARP = 0,
	CNT_REDIRECT_TCP = 1,
	CNT_REDIRECT_UDP = 2,
	CNT_REDIRECT_ICMP = 3,
	CNT_PASS_OTHER_ETHERTYPE = 4,
	CNT_PASS_OTHER_ADDR = 5,
	CNT_PASS_PORT_NOT_OWNED = 6,
	CNT_PASS_MALFORMED = 7,
	CNT_PASS_NO_SOCKET = 8,
	CNT_PASS_FRAGMENT = 9,
	CNT_PASS_ARP_OTHER = 10,
	CNT_PASS_PROTO_NOT_OWNED = 11,
	CNT_PASS_ARP_SHARED = 12,
	CNT_REDIRECT_OTHER = 13, /* to an exclusive address: fragment, other protocol, malformed */
	CNT_ARP_COPIED = 14,     /* a passed ARP frame copied to the `arp_seen` ring */
	CNT_ARP_COPY_LOST = 15,  /* ... or not: the ring was full */
	CNT_MAX = 16,
};

/* What the `arp_seen` ring carries: the Ethernet header and ARP body of a
 * frame passed to the kernel (42 bytes). */
#define ARP_SEEN_LEN 42
#define ARP_SEEN_RING_BYTES (64 * 1024)

/* The single entry of the `config` array. */
struct steer_config {
	__u16 ephemeral_lo; /* inclusive; 0 with hi 0: no range */
	__u16 ephemeral_hi; /* inclusive */
	__u8 icmp;          /* 1: ICMP to our addresses is ours */
	__u8 pad[3];
};

/* Key of the `ports` hash: protocol (6 TCP, 17 UDP) and host-order port. */
#define PORT_KEY(proto, port) (((__u32)(proto) << 16) | (__u32)(port))

/* Values of the `local_addrs` hash. */
#define ADDR_EXCLUSIVE 1 /* only surge has it: ARP for it is ours too */
#define ADDR_SHARED 2    /* the kernel has it as well: ARP stays with the kernel */

#endif
