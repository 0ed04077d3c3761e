//! Per-flow TCP tracking: the connection state machine, handshake RTT, and sequence
//! analysis (retransmissions, out-of-order, keep-alives, zero-window probes).
//! Definitions are in `docs/flows.md`.

use netrec_format::TcpState;
use netrec_format::decode::{TcpInfo, tcp_flags as tf};

/// Reordering threshold when the handshake RTT is unknown (Wireshark's default, 3 ms).
const DEFAULT_OOO_THRESHOLD_NS: u64 = 3_000_000;
const MAX_HOLES: usize = 3;

/// `a < b` in sequence-number space (RFC 1982 style wrap-around).
#[inline]
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}
#[inline]
fn seq_le(a: u32, b: u32) -> bool {
    !seq_lt(b, a)
}

/// Sequence-space range not seen yet (a gap), and when it opened.
#[derive(Clone, Copy, Debug, Default)]
struct Hole {
    start: u32,
    end: u32,
    opened_ns: u64,
}

/// One direction's sequence state.
#[derive(Clone, Debug, Default)]
pub(crate) struct SeqDir {
    init: bool,
    /// Highest sequence end (seq + len, SYN/FIN count one) seen.
    max_end: u32,
    /// Initial sequence number from this direction's SYN or SYN/ACK (when `has_isn`; not an
    /// `Option`, which would take 8 bytes: a flood's million flows carry two of these).
    isn: u32,
    has_isn: bool,
    fin: bool,
    /// The last segment from this direction advertised a zero window.
    win_zero: bool,
    nholes: u8,
    /// Allocated at the first gap: most flows never have one, and inline the gaps would be 96 of
    /// the bytes of every TCP flow (a SYN flood has a million).
    holes: Option<Box<[Hole; MAX_HOLES]>>,
}

/// How sequence analysis classified a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SeqClass {
    Normal,
    Retransmission,
    OutOfOrder,
    KeepAlive,
    ZeroWindowProbe,
}

impl SeqDir {
    /// The gap slots (the first `nholes` are in use).
    #[inline]
    fn slots(&mut self) -> &mut [Hole; MAX_HOLES] {
        self.holes.get_or_insert_with(Box::default)
    }

    fn add_hole(&mut self, start: u32, end: u32, now: u64) {
        let h = Hole { start, end, opened_ns: now };
        let n = self.nholes as usize;
        let holes = self.slots();
        if n < MAX_HOLES {
            holes[n] = h;
            self.nholes += 1;
        } else {
            // Forget the oldest gap: a segment filling it later counts as a retransmission.
            holes.copy_within(1.., 0);
            holes[MAX_HOLES - 1] = h;
        }
    }

    fn remove_hole(&mut self, i: usize) {
        let n = self.nholes as usize;
        self.slots().copy_within(i + 1..n, i);
        self.nholes -= 1;
    }

    /// Marks `[seq, end)` as seen in the gaps it overlaps. Returns the age (ns) of the
    /// oldest gap it filled, or None when it filled none.
    fn fill(&mut self, seq: u32, end: u32, now: u64) -> Option<u64> {
        let mut age = None;
        let mut i = 0;
        while i < self.nholes as usize {
            let h = self.slots()[i];
            if !(seq_lt(seq, h.end) && seq_lt(h.start, end)) {
                i += 1;
                continue;
            }
            let a = now.saturating_sub(h.opened_ns);
            age = Some(age.map_or(a, |x: u64| x.max(a)));
            match (seq_le(seq, h.start), seq_le(h.end, end)) {
                (true, true) => {
                    self.remove_hole(i);
                    continue;
                }
                (true, false) => self.slots()[i].start = end,
                (false, true) => self.slots()[i].end = seq,
                (false, false) => {
                    // Split: keep the left part here and the right part if there is room.
                    self.slots()[i].end = seq;
                    if (self.nholes as usize) < MAX_HOLES {
                        self.add_hole(end, h.end, h.opened_ns);
                    }
                }
            }
            i += 1;
        }
        age
    }

    #[allow(clippy::too_many_arguments)]
    fn classify(
        &mut self,
        seq: u32,
        payload: u32,
        syn: bool,
        fin: bool,
        peer_win_zero: bool,
        now: u64,
        ooo_ns: u64,
    ) -> SeqClass {
        let seglen = payload.wrapping_add(u32::from(syn)).wrapping_add(u32::from(fin));
        let end = seq.wrapping_add(seglen);
        if !self.init {
            self.init = true;
            self.max_end = end;
            return SeqClass::Normal;
        }
        if seglen == 0 {
            // A pure ACK ahead of what we saw: the capture missed data.
            if seq_lt(self.max_end, seq) {
                self.add_hole(self.max_end, seq, now);
                self.max_end = seq;
            }
            return SeqClass::Normal;
        }
        if !syn && !fin && payload <= 1 && seq == self.max_end.wrapping_sub(1) {
            return SeqClass::KeepAlive;
        }
        if peer_win_zero && !syn && !fin && payload == 1 && seq == self.max_end {
            // Not accepted by a zero window: do not advance, so repeated probes stay probes.
            return SeqClass::ZeroWindowProbe;
        }
        if seq_lt(self.max_end, end) {
            if seq_lt(self.max_end, seq) {
                self.add_hole(self.max_end, seq, now);
            } else if seq_lt(seq, self.max_end) {
                // Overlaps the end: the old part may fill a gap; new data advances.
                self.fill(seq, self.max_end, now);
            }
            self.max_end = end;
            return SeqClass::Normal;
        }
        // Entirely at or below the highest end seen.
        match self.fill(seq, end, now) {
            Some(age) if age <= ooo_ns => SeqClass::OutOfOrder,
            _ => SeqClass::Retransmission,
        }
    }
}

/// Four optional nanosecond values in 40 bytes instead of `[Option<u64>; 4]`'s 64 (every TCP
/// flow carries them; a SYN flood has a million flows).
#[derive(Clone, Copy, Debug, Default)]
struct Times {
    set: u8,
    v: [u64; 4],
}

/// Indexes into [`Times`].
const LAST_SYN: usize = 0;
const SYNACK: usize = 1;
const RTT_SERVER: usize = 2;
const RTT_CLIENT: usize = 3;

impl Times {
    #[inline]
    fn get(&self, i: usize) -> Option<u64> {
        (self.set & 1 << i != 0).then_some(self.v[i])
    }

    #[inline]
    fn put(&mut self, i: usize, v: Option<u64>) {
        match v {
            Some(v) => {
                self.v[i] = v;
                self.set |= 1 << i;
            }
            None => self.set &= !(1 << i),
        }
    }
}

/// The TCP part of a flow.
#[derive(Clone, Debug, Default)]
pub(crate) struct TcpTrack {
    pub state: TcpState,
    /// [initiator->responder, responder->initiator]
    dirs: [SeqDir; 2],
    /// The most recent SYN before the SYN/ACK (Wireshark's `ts_mru_syn`), the SYN/ACK, and the
    /// two halves of the handshake RTT.
    times: Times,
}

/// What one segment did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TcpOutcome {
    pub retransmission: bool,
    pub out_of_order: bool,
    pub zero_window: bool,
    pub handshake_done: bool,
}

/// Whether the sender of the first segment of a flow is its initiator.
pub(crate) fn sender_initiates(t: &TcpInfo) -> bool {
    // Only a SYN/ACK names its receiver as the initiator.
    t.flags & (tf::SYN | tf::ACK) != (tf::SYN | tf::ACK)
}

/// A pure SYN (SYN without ACK).
#[inline]
pub(crate) fn is_pure_syn(t: &TcpInfo) -> bool {
    t.flags & (tf::SYN | tf::ACK | tf::RST) == tf::SYN
}

impl TcpTrack {
    /// Whether a pure SYN from direction `dir` (0 fwd, 1 rev) with sequence `seq` opens
    /// a new connection on this key (port reuse).
    pub fn is_reuse(&self, dir: usize, seq: u32) -> bool {
        match self.state {
            TcpState::Closed | TcpState::Reset => true,
            _ => {
                let d = &self.dirs[dir & 1];
                self.times.get(SYNACK).is_some() && d.has_isn && d.isn != seq
            }
        }
    }

    /// SYN -> SYN/ACK at the capture point, ns.
    pub fn rtt_server_ns(&self) -> Option<u64> {
        self.times.get(RTT_SERVER)
    }

    /// SYN/ACK -> ACK at the capture point, ns.
    pub fn rtt_client_ns(&self) -> Option<u64> {
        self.times.get(RTT_CLIENT)
    }

    /// The handshake RTT (client + server halves) if both were measured.
    fn irtt(&self) -> Option<u64> {
        Some(self.rtt_server_ns()? + self.rtt_client_ns()?)
    }

    /// Account one segment from direction `dir` (0 fwd, 1 rev) at `now`.
    pub fn process(&mut self, dir: usize, t: &TcpInfo, payload: u32, now: u64) -> TcpOutcome {
        let dir = dir & 1;
        let f = t.flags;
        let (syn, ack, fin, rst) = (f & tf::SYN != 0, f & tf::ACK != 0, f & tf::FIN != 0, f & tf::RST != 0);
        let mut out = TcpOutcome::default();

        // Sequence analysis first, against the state before this segment.
        if !rst {
            let peer_zero = self.dirs[dir ^ 1].win_zero;
            let ooo_ns = self.irtt().filter(|&v| v > 0).unwrap_or(DEFAULT_OOO_THRESHOLD_NS);
            let d = &mut self.dirs[dir];
            match d.classify(t.seq, payload, syn, fin, peer_zero, now, ooo_ns) {
                SeqClass::Retransmission => out.retransmission = true,
                SeqClass::OutOfOrder => out.out_of_order = true,
                SeqClass::Normal | SeqClass::KeepAlive | SeqClass::ZeroWindowProbe => {}
            }
            d.win_zero = t.window == 0 && !syn;
            out.zero_window = t.window == 0 && !(syn || fin);
            if syn && !d.has_isn {
                d.isn = t.seq;
                d.has_isn = true;
            }
        }

        let fresh = self.state == TcpState::None;
        if syn && !ack {
            if fresh {
                self.state = TcpState::SynSent;
            }
            if dir == 0 && self.state == TcpState::SynSent {
                self.times.put(LAST_SYN, Some(now));
            }
        } else if syn && ack {
            if dir == 1 && (fresh || self.state == TcpState::SynSent) && self.times.get(SYNACK).is_none() {
                self.state = TcpState::SynReceived;
                self.times.put(SYNACK, Some(now));
                let rtt = self.times.get(LAST_SYN).map(|s| now.saturating_sub(s));
                self.times.put(RTT_SERVER, rtt);
            } else if fresh {
                self.state = TcpState::Midstream;
            }
        } else {
            if fresh {
                self.state = TcpState::Midstream;
            }
            if ack && dir == 0 && self.state == TcpState::SynReceived {
                self.state = TcpState::Established;
                let rtt = self.times.get(SYNACK).map(|s| now.saturating_sub(s));
                self.times.put(RTT_CLIENT, rtt);
                out.handshake_done = true;
            }
        }
        if fin {
            self.dirs[dir].fin = true;
            if !matches!(self.state, TcpState::Reset | TcpState::Closed) {
                self.state = if self.dirs[dir ^ 1].fin { TcpState::Closed } else { TcpState::FinWait };
            }
        }
        if rst && self.state != TcpState::Closed {
            self.state = TcpState::Reset;
        }
        out
    }
}
