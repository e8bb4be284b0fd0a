//! Packet delay and corruption in the router, done in userspace with NFQUEUE.
//!
//! The kernel this project runs on has no `sch_netem`, so delay and jitter cannot be a qdisc.
//! Instead an iptables `NFQUEUE` rule in the router's FORWARD chain hands every forwarded
//! packet's metadata to a thread (or, for a lab that outlives its process, to
//! `surge lab delay-queue`), which holds the packet's id and gives the ACCEPT verdict once
//! the delay (± uniform jitter) has passed. Packets never get copied to userspace
//! (`NFQNL_COPY_META`) unless some are to be corrupted: then whole packets are copied
//! (`NFQNL_COPY_PACKET`), and a corrupted packet goes back with its ACCEPT verdict as the
//! verdict's payload, one byte of its IP payload flipped. The small NFQUEUE client below
//! speaks nfnetlink over `netlink-sys`'s socket, so it needs no `unsafe`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, ppoll};
use nix::sys::time::TimeSpec;
use rtnetlink::sys::protocols::NETLINK_NETFILTER;
use rtnetlink::sys::{Socket, SocketAddr};

use crate::LabError;
use crate::netns::{enter_netns, netns_exists};

/// The NFQUEUE number the router's rule sends packets to (queues are per namespace).
pub(crate) const QUEUE_NUM: u16 = 0;
/// Most packets the kernel holds for us; beyond this it drops, as a full netem queue does.
const QUEUE_MAX_LEN: u32 = 10_000;
/// Longest sleep between checks of the stop flag and of the namespace.
const MAX_WAIT: Duration = Duration::from_millis(20);

// nfnetlink and NFQUEUE constants (linux/netfilter/nfnetlink*.h).
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_PAYLOAD: u16 = 10;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_META: u8 = 1;
const NFQNL_COPY_PACKET: u8 = 2;
/// Bytes of each packet copied to us when corrupting (the largest IPv4 packet).
const COPY_RANGE: u32 = 0xffff;
const NF_ACCEPT: u32 = 1;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLMSG_ERROR: u16 = 2;
const NLMSG_HDR_LEN: usize = 16;
const NFGENMSG_LEN: usize = 4;

/// Rounds up to netlink's 4-byte alignment.
fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// One nfnetlink message for the queue subsystem with the given attributes.
fn nfq_message(kind: u16, flags: u16, seq: u32, queue: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut msg = vec![0u8; NLMSG_HDR_LEN];
    msg.extend_from_slice(&[0, 0]); // nfgen_family AF_UNSPEC, version NFNETLINK_V0
    msg.extend_from_slice(&queue.to_be_bytes()); // res_id
    for (kind, payload) in attrs {
        let len = 4 + payload.len();
        msg.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(payload);
        msg.resize(align4(msg.len()), 0);
    }
    let total = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    msg[0..4].copy_from_slice(&total.to_ne_bytes());
    msg[4..6].copy_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | kind).to_ne_bytes());
    msg[6..8].copy_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
    msg[8..12].copy_from_slice(&seq.to_ne_bytes());
    msg
}

/// A `u16` in native order at `at`, if the buffer is long enough.
fn ne_u16(buf: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(buf.get(at..at + 2)?.try_into().ok()?))
}

/// A `u32` in native order at `at`, if the buffer is long enough.
fn ne_u32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// What one received netlink message says.
#[derive(Debug, PartialEq, Eq)]
enum Received<'a> {
    /// A queued packet's id, and its bytes if they were copied.
    Packet(u32, Option<&'a [u8]>),
    /// An ACK (0) or error (negative errno).
    Ack(i32),
    /// Anything else.
    Other,
}

/// Splits a datagram into netlink messages and decodes the ones we care about.
/// Malformed messages end the walk; nothing here can panic on kernel input.
fn parse_datagram(buf: &[u8]) -> Vec<Received<'_>> {
    let mut out = Vec::new();
    let mut at = 0;
    while let (Some(len), Some(kind)) = (ne_u32(buf, at), ne_u16(buf, at + 4)) {
        let len = len as usize;
        let Some(msg) = buf.get(at..at + len).filter(|_| len >= NLMSG_HDR_LEN) else {
            break;
        };
        if kind == NLMSG_ERROR {
            let code = ne_u32(msg, NLMSG_HDR_LEN).map_or(i32::MIN, |c| c as i32);
            out.push(Received::Ack(code));
        } else if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
            let mut attr_at = NLMSG_HDR_LEN + NFGENMSG_LEN;
            let mut id = None;
            let mut payload = None;
            while let (Some(alen), Some(akind)) = (ne_u16(msg, attr_at), ne_u16(msg, attr_at + 2)) {
                let alen = usize::from(alen);
                if alen < 4 {
                    break;
                }
                if akind & 0x3fff == NFQA_PACKET_HDR {
                    // struct nfqnl_msg_packet_hdr { __be32 packet_id; __be16 hw_protocol; __u8 hook; }
                    id = msg
                        .get(attr_at + 4..attr_at + 8)
                        .and_then(|b| b.try_into().ok())
                        .map(u32::from_be_bytes);
                } else if akind & 0x3fff == NFQA_PAYLOAD {
                    payload = msg.get(attr_at + 4..attr_at + alen);
                }
                attr_at += align4(alen);
            }
            out.push(id.map_or(Received::Other, |id| Received::Packet(id, payload)));
        } else {
            out.push(Received::Other);
        }
        at += align4(len);
    }
    out
}

/// An NFQUEUE socket bound to one queue of the namespace it was opened in.
struct NfQueue {
    socket: Socket,
    queue: u16,
    seq: u32,
    buf: Vec<u8>,
}

impl NfQueue {
    /// Opens and binds queue `queue`: metadata only, or whole packets if `copy_packets`.
    fn open(queue: u16, copy_packets: bool) -> io::Result<Self> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.set_no_enobufs(true)?;
        socket.set_rx_buf_sz(4 << 20)?;
        let mut q = Self {
            socket,
            queue,
            seq: 0,
            buf: Vec::with_capacity(1 << 16),
        };
        // struct nfqnl_msg_config_cmd { __u8 command; __u8 _pad; __be16 pf; }
        q.configure(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0])?;
        // struct nfqnl_msg_config_params { __be32 copy_range; __u8 copy_mode; }
        let mut params = [0u8; 5];
        if copy_packets {
            params[..4].copy_from_slice(&COPY_RANGE.to_be_bytes());
            params[4] = NFQNL_COPY_PACKET;
        } else {
            params[4] = NFQNL_COPY_META;
        }
        q.configure(NFQA_CFG_PARAMS, &params)?;
        q.configure(NFQA_CFG_QUEUE_MAXLEN, &QUEUE_MAX_LEN.to_be_bytes())?;
        q.socket.set_non_blocking(true)?;
        Ok(q)
    }

    /// Sends one config attribute and waits for the kernel's ACK.
    fn configure(&mut self, attr: u16, payload: &[u8]) -> io::Result<()> {
        self.seq += 1;
        let msg = nfq_message(
            NFQNL_MSG_CONFIG,
            NLM_F_ACK,
            self.seq,
            self.queue,
            &[(attr, payload)],
        );
        self.socket.send_to(&msg, &SocketAddr::new(0, 0), 0)?;
        for _ in 0..16 {
            self.buf.clear();
            self.socket.recv(&mut self.buf, 0)?;
            for received in parse_datagram(&self.buf) {
                if let Received::Ack(code) = received {
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(code.saturating_neg()))
                    };
                }
            }
        }
        Err(io::Error::other("no ACK from nfnetlink_queue"))
    }

    /// Appends the ids of every packet waiting on the socket to `ids`; `corrupt` decides
    /// for each copied packet whether it goes back changed (and changes it).
    fn drain(&mut self, ids: &mut Vec<u32>, mut corrupt: impl FnMut(u32, &[u8])) -> io::Result<()> {
        loop {
            self.buf.clear();
            self.buf.reserve(1 << 17);
            match self.socket.recv(&mut self.buf, 0) {
                Ok(_) => {
                    for r in parse_datagram(&self.buf) {
                        if let Received::Packet(id, payload) = r {
                            ids.push(id);
                            if let Some(packet) = payload {
                                corrupt(id, packet);
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                // The kernel dropped messages (queue full); carry on with the rest.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// ACCEPTs the given packets in one write; those in `changed` go out with their new bytes.
    fn accept(&mut self, ids: &[u32], changed: &mut HashMap<u32, Vec<u8>>) -> io::Result<()> {
        let mut batch = Vec::with_capacity(ids.len() * 32);
        for &id in ids {
            // struct nfqnl_msg_verdict_hdr { __be32 verdict; __be32 id; }
            let mut hdr = [0u8; 8];
            hdr[..4].copy_from_slice(&NF_ACCEPT.to_be_bytes());
            hdr[4..].copy_from_slice(&id.to_be_bytes());
            let packet = changed.remove(&id);
            let mut attrs: Vec<(u16, &[u8])> = vec![(NFQA_VERDICT_HDR, &hdr)];
            if let Some(p) = &packet {
                attrs.push((NFQA_PAYLOAD, p));
            }
            batch.extend(nfq_message(NFQNL_MSG_VERDICT, 0, 0, self.queue, &attrs));
            // One netlink write carries at most what the kernel takes in one message batch.
            if batch.len() > (1 << 18) {
                self.socket.send_to(&batch, &SocketAddr::new(0, 0), 0)?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            self.socket.send_to(&batch, &SocketAddr::new(0, 0), 0)?;
        }
        Ok(())
    }
}

/// How long to hold each packet, and how many to corrupt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DelaySpec {
    /// Mean one-way delay per router hop.
    pub delay: Duration,
    /// Uniform jitter around it (0 for none).
    pub jitter: Duration,
    /// Probability (0..=1) that a packet has one byte of its IP payload flipped.
    pub corrupt: f64,
    /// Probability (0..=1) that an ECN-capable packet (ECT(0) or ECT(1)) is marked CE, as
    /// a congested AQM router would (RFC 3168 §5).
    pub ce_mark: f64,
}

/// Seed of the CE-marking generator.
const CE_SEED: u64 = 0xec4e_c4ec_4ec4_ec4e;

/// Seed of the corruption generator: the same packets in the same order are corrupted
/// the same way in every run.
const CORRUPT_SEED: u64 = 0x5eed_c0de_0bad_f00d;

impl DelaySpec {
    /// Whether packets must be copied to userspace (to corrupt or mark them).
    fn copies_packets(&self) -> bool {
        self.corrupt > 0.0 || self.ce_mark > 0.0
    }
}

/// xorshift64*: jitter and corruption only need to be spread, not unpredictable.
struct Jitter(u64);

impl Jitter {
    /// The next 64 random bits.
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A delay in `[delay - jitter, delay + jitter]`.
    fn sample(&mut self, spec: DelaySpec) -> Duration {
        if spec.jitter.is_zero() {
            return spec.delay;
        }
        let unit = self.unit();
        let offset = spec.jitter.as_secs_f64() * (2.0 * unit - 1.0);
        Duration::from_secs_f64((spec.delay.as_secs_f64() + offset).max(0.0))
    }
}

/// With probability `p`, a copy of IPv4 `packet` with the byte at a random offset of its
/// IP payload inverted (so the transport checksum no longer verifies: an inverted byte
/// changes a one's-complement sum by a non-zero amount); `None` when left alone or when
/// the packet has no payload.
fn corrupted(packet: &[u8], p: f64, rng: &mut Jitter) -> Option<Vec<u8>> {
    if p <= 0.0 || rng.unit() >= p {
        return None;
    }
    let header = usize::from(packet.first()? & 0x0f) * 4;
    let payload = packet.len().checked_sub(header).filter(|n| *n > 0)?;
    let at = header + (rng.next() % payload as u64) as usize;
    let mut out = packet.to_vec();
    out[at] ^= 0xff;
    Some(out)
}

/// With probability `p`, a copy of IPv4 `packet` marked CE (RFC 3168 §5: ECN field 11)
/// with its header checksum updated; `None` when left alone or not ECN-capable.
fn ce_marked(packet: &[u8], p: f64, rng: &mut Jitter) -> Option<Vec<u8>> {
    let tos = *packet.get(1)?;
    let header = usize::from(packet.first()? & 0x0f) * 4;
    if p <= 0.0 || !matches!(tos & 0b11, 0b01 | 0b10) || header < 20 || packet.len() < header {
        return None;
    }
    if rng.unit() >= p {
        return None;
    }
    let mut out = packet.to_vec();
    out[1] = tos | 0b11;
    out[10] = 0;
    out[11] = 0;
    let mut sum: u32 = out[..header]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    out[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    Some(out)
}

/// Holds and releases packets until `stop` is set or the namespace file disappears.
fn run_queue(
    mut queue: NfQueue,
    spec: DelaySpec,
    netns: &str,
    stop: &AtomicBool,
) -> io::Result<()> {
    let mut held: BinaryHeap<Reverse<(Instant, u64, u32)>> = BinaryHeap::new();
    let mut order = 0u64;
    let mut jitter = Jitter(0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id()));
    let mut corrupter = Jitter(CORRUPT_SEED);
    let mut marker = Jitter(CE_SEED);
    let mut changed: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut ids = Vec::new();
    let mut due = Vec::new();
    let mut last_check = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now.duration_since(last_check) >= MAX_WAIT {
            last_check = now;
            if !netns_exists(netns) {
                return Ok(());
            }
        }
        let wait = held.peek().map_or(MAX_WAIT, |Reverse((at, _, _))| {
            at.saturating_duration_since(now).min(MAX_WAIT)
        });
        if !wait.is_zero() {
            let mut fds = [PollFd::new(queue.socket.as_fd(), PollFlags::POLLIN)];
            match ppoll(&mut fds, Some(TimeSpec::from_duration(wait)), None) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        ids.clear();
        queue.drain(&mut ids, |id, packet| {
            let marked = ce_marked(packet, spec.ce_mark, &mut marker);
            let packet = marked.as_deref().unwrap_or(packet);
            if let Some(bad) = corrupted(packet, spec.corrupt, &mut corrupter) {
                changed.insert(id, bad);
            } else if let Some(marked) = marked {
                changed.insert(id, marked);
            }
        })?;
        let arrived = Instant::now();
        for &id in &ids {
            order += 1;
            held.push(Reverse((arrived + jitter.sample(spec), order, id)));
        }
        let now = Instant::now();
        due.clear();
        while let Some(Reverse((at, _, id))) = held.peek().copied() {
            if at > now {
                break;
            }
            held.pop();
            due.push(id);
        }
        queue.accept(&due, &mut changed)?;
    }
    Ok(())
}

/// A delay queue running on a thread of this process.
#[derive(Debug)]
pub(crate) struct DelayThread {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl DelayThread {
    /// Binds the queue inside `netns` and starts holding packets; returns once bound.
    pub(crate) fn start(netns: &str, spec: DelaySpec) -> Result<Self, LabError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread_stop = Arc::clone(&stop);
        let ns = netns.to_string();
        let handle = std::thread::Builder::new()
            .name("surge-lab-delay".to_string())
            .spawn(move || {
                let opened = enter_netns(&ns).and_then(|guard| {
                    let queue = NfQueue::open(QUEUE_NUM, spec.copies_packets()).map_err(|e| {
                        LabError::io(format!("binding NFQUEUE {QUEUE_NUM} in {ns}"), e)
                    });
                    drop(guard);
                    queue
                });
                match opened {
                    Ok(queue) => {
                        let _ = ready_tx.send(Ok(()));
                        if let Err(e) = run_queue(queue, spec, &ns, &thread_stop) {
                            tracing::error!(netns = %ns, "delay queue stopped: {e}");
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| LabError::io("spawning the delay thread", e))?;
        let started = ready_rx.recv().unwrap_or_else(|_| {
            Err(LabError::Netns {
                what: "starting the delay queue".to_string(),
                reason: "the thread ended early".to_string(),
            })
        });
        let mut thread = Self {
            stop,
            handle: Some(handle),
        };
        match started {
            Ok(()) => Ok(thread),
            Err(e) => {
                thread.stop_now();
                Err(e)
            }
        }
    }

    /// Stops the thread and waits for it (at most one poll interval).
    pub(crate) fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for DelayThread {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Runs the delay queue of lab namespace `netns` on this thread until the namespace is
/// removed (used by `surge lab delay-queue`, which keeps a kept lab's delay working).
pub fn serve_delay_queue(netns: &str, spec: DelaySpec) -> Result<(), LabError> {
    let guard = enter_netns(netns)?;
    let queue = NfQueue::open(QUEUE_NUM, spec.copies_packets())
        .map_err(|e| LabError::io(format!("binding NFQUEUE {QUEUE_NUM} in {netns}"), e))?;
    drop(guard);
    let never = AtomicBool::new(false);
    run_queue(queue, spec, netns, &never).map_err(|e| LabError::io("running the delay queue", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_safe() {
        let verdict = nfq_message(
            NFQNL_MSG_VERDICT,
            0,
            7,
            0,
            &[(NFQA_VERDICT_HDR, &[0, 0, 0, 1, 0, 0, 0, 9])],
        );
        assert_eq!(verdict.len(), 16 + 4 + 12);
        assert_eq!(ne_u32(&verdict, 0), Some(32));
        // A fake packet message carrying id 0x01020304.
        let mut packet = nfq_message(
            NFQNL_MSG_PACKET,
            0,
            0,
            0,
            &[(NFQA_PACKET_HDR, &[1, 2, 3, 4, 8, 0, 2])],
        );
        assert_eq!(
            parse_datagram(&packet),
            vec![Received::Packet(0x0102_0304, None)]
        );
        for cut in 0..packet.len() {
            let _ = parse_datagram(&packet[..cut]);
        }
        packet[0] = 0xff; // length beyond the buffer
        assert!(parse_datagram(&packet).is_empty());
        let mut zero_attr = nfq_message(
            NFQNL_MSG_PACKET,
            0,
            0,
            0,
            &[(NFQA_PACKET_HDR, &[1, 2, 3, 4])],
        );
        zero_attr[20] = 0;
        zero_attr[21] = 0;
        assert_eq!(parse_datagram(&zero_attr), vec![Received::Other]);
    }

    #[test]
    fn copied_packets_are_parsed_and_corruption_flips_one_payload_byte() {
        let ip: Vec<u8> = [0x45u8, 0, 0, 28]
            .into_iter()
            .chain(std::iter::repeat_n(0xa5, 24))
            .collect();
        let message = nfq_message(
            NFQNL_MSG_PACKET,
            0,
            0,
            0,
            &[
                (NFQA_PACKET_HDR, &[0, 0, 0, 9, 8, 0, 2]),
                (NFQA_PAYLOAD, &ip),
            ],
        );
        assert_eq!(
            parse_datagram(&message),
            vec![Received::Packet(9, Some(&ip[..]))]
        );
        // p = 1: always one byte, always past the 20-byte header, always inverted.
        let mut rng = Jitter(CORRUPT_SEED);
        let mut offsets = std::collections::HashSet::new();
        for _ in 0..200 {
            let bad = corrupted(&ip, 1.0, &mut rng).expect("corrupted");
            let diff: Vec<usize> = (0..ip.len()).filter(|&i| bad[i] != ip[i]).collect();
            assert_eq!(diff.len(), 1, "{diff:?}");
            assert!(diff[0] >= 20, "header untouched: {diff:?}");
            assert_eq!(bad[diff[0]], !ip[diff[0]]);
            offsets.insert(diff[0]);
        }
        assert!(
            offsets.len() > 4,
            "offsets spread over the payload: {offsets:?}"
        );
        // p = 0 never; p = 0.25 about a quarter; the same seed gives the same choices.
        assert!((0..100).all(|_| corrupted(&ip, 0.0, &mut rng).is_none()));
        let pick = |seed| {
            let mut r = Jitter(seed);
            (0..4000)
                .map(|_| corrupted(&ip, 0.25, &mut r).is_some())
                .collect::<Vec<_>>()
        };
        let n = pick(CORRUPT_SEED).iter().filter(|c| **c).count();
        assert!((800..1200).contains(&n), "{n} of 4000 at 25 %");
        assert_eq!(pick(CORRUPT_SEED), pick(CORRUPT_SEED));
        // A header with no payload, or garbage, is left alone.
        assert_eq!(corrupted(&ip[..20], 1.0, &mut rng), None);
        assert_eq!(corrupted(&[], 1.0, &mut rng), None);
        assert_eq!(corrupted(&[0x4f, 1, 2], 1.0, &mut rng), None);
    }

    #[test]
    fn ce_marking_sets_both_ecn_bits_and_keeps_the_header_checksum_valid() {
        // A 20-byte header with a valid checksum, ECT(0), and 8 bytes of payload.
        let mut ip = vec![
            0x45, 0x02, 0, 28, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 198, 18, 1, 1, 198, 18, 2, 1,
        ];
        ip.extend_from_slice(&[0xa5; 8]);
        let fold = |h: &[u8]| {
            let mut s: u32 = h
                .chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .sum();
            while s > 0xffff {
                s = (s & 0xffff) + (s >> 16);
            }
            s as u16
        };
        let c = !fold(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(fold(&ip[..20]), 0xffff);
        let mut rng = Jitter(CE_SEED);
        let marked = ce_marked(&ip, 1.0, &mut rng).expect("ECT is marked");
        assert_eq!(marked[1] & 0b11, 0b11, "CE");
        assert_eq!(marked[1] >> 2, ip[1] >> 2, "DSCP kept");
        assert_eq!(
            fold(&marked[..20]),
            0xffff,
            "header checksum still verifies"
        );
        assert_eq!(marked[20..], ip[20..]);
        // Not-ECT is never marked (RFC 3168 §5: it would be dropped instead).
        let mut not_ect = ip.clone();
        not_ect[1] = 0;
        assert_eq!(ce_marked(&not_ect, 1.0, &mut rng), None);
        assert_eq!(ce_marked(&ip, 0.0, &mut rng), None);
        assert_eq!(ce_marked(&ip[..1], 1.0, &mut rng), None);
    }

    #[test]
    fn jitter_stays_in_range() {
        let spec = DelaySpec {
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(1),
            corrupt: 0.0,
            ce_mark: 0.0,
        };
        let mut j = Jitter(42);
        for _ in 0..1000 {
            let d = j.sample(spec);
            assert!(
                d >= Duration::from_millis(4) && d <= Duration::from_millis(6),
                "{d:?}"
            );
        }
    }
}
