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
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SeqDir {
    init: bool,
    /// Highest sequence end (seq + len, SYN/FIN count one) seen.
    max_end: u32,
    /// Initial sequence number from this direction's SYN or SYN/ACK.
    isn: Option<u32>,
    fin: bool,
    /// The last segment from this direction advertised a zero window.
    win_zero: bool,
    nholes: u8,
    holes: [Hole; MAX_HOLES],
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
    fn add_hole(&mut self, start: u32, end: u32, now: u64) {
        let h = Hole { start, end, opened_ns: now };
        if (self.nholes as usize) < MAX_HOLES {
            self.holes[self.nholes as usize] = h;
            self.nholes += 1;
        } else {
            // Forget the oldest gap: a segment filling it later counts as a retransmission.
            self.holes.copy_within(1.., 0);
            self.holes[MAX_HOLES - 1] = h;
        }
    }

    fn remove_hole(&mut self, i: usize) {
        let n = self.nholes as usize;
        self.holes.copy_within(i + 1..n, i);
        self.nholes -= 1;
    }

    /// Marks `[seq, end)` as seen in the gaps it overlaps. Returns the age (ns) of the
    /// oldest gap it filled, or None when it filled none.
    fn fill(&mut self, seq: u32, end: u32, now: u64) -> Option<u64> {
        let mut age = None;
        let mut i = 0;
        while i < self.nholes as usize {
            let h = self.holes[i];
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
                (true, false) => self.holes[i].start = end,
                (false, true) => self.holes[i].end = seq,
                (false, false) => {
                    // Split: keep the left part here and the right part if there is room.
                    self.holes[i].end = seq;
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

/// The TCP part of a flow.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct TcpTrack {
    pub state: TcpState,
    /// [initiator->responder, responder->initiator]
    dirs: [SeqDir; 2],
    /// Time of the most recent SYN before the SYN/ACK (Wireshark's `ts_mru_syn`).
    last_syn_ns: Option<u64>,
    synack_ns: Option<u64>,
    pub rtt_server_ns: Option<u64>,
    pub rtt_client_ns: Option<u64>,
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
            _ => self.synack_ns.is_some() && self.dirs[dir & 1].isn.is_some_and(|isn| isn != seq),
        }
    }

    /// The handshake RTT (client + server halves) if both were measured.
    fn irtt(&self) -> Option<u64> {
        Some(self.rtt_server_ns? + self.rtt_client_ns?)
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
            if syn && d.isn.is_none() {
                d.isn = Some(t.seq);
            }
        }

        let fresh = self.state == TcpState::None;
        if syn && !ack {
            if fresh {
                self.state = TcpState::SynSent;
            }
            if dir == 0 && self.state == TcpState::SynSent {
                self.last_syn_ns = Some(now);
            }
        } else if syn && ack {
            if dir == 1 && (fresh || self.state == TcpState::SynSent) && self.synack_ns.is_none() {
                self.state = TcpState::SynReceived;
                self.synack_ns = Some(now);
                self.rtt_server_ns = self.last_syn_ns.map(|s| now.saturating_sub(s));
            } else if fresh {
                self.state = TcpState::Midstream;
            }
        } else {
            if fresh {
                self.state = TcpState::Midstream;
            }
            if ack && dir == 0 && self.state == TcpState::SynReceived {
                self.state = TcpState::Established;
                self.rtt_client_ns = self.synack_ns.map(|s| now.saturating_sub(s));
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
