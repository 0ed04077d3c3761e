//! netrec kernel programs: a TC/tcx classifier for ingress and egress, and an XDP program for
//! ingress-only capture at high rates. Both run the same code through the `Packet` trait.
//!
//! Per packet: count it (per-CPU counters), update the per-flow counters of its 5-tuple in a
//! per-CPU hash map, and copy its first `snaplen` bytes with metadata into a ring buffer.
//! It never alters or drops traffic (always TC_ACT_UNSPEC / XDP_PASS). Every failure to record is
//! counted (RING_DROPS, MAP_FULL, MAP_BUSY): loss is accounted, never silent.
#![no_std]
#![no_main]
// The `#[classifier]` macro generates the exported `extern "C" fn(*mut __sk_buff)`; the kernel owns that pointer.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use aya_ebpf::EbpfContext;
use aya_ebpf::bindings::__sk_buff;
use aya_ebpf::bindings::{
    BPF_NOEXIST, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, TC_ACT_UNSPEC, xdp_action,
};
use aya_ebpf::helpers::generated::{
    bpf_ktime_get_ns, bpf_ringbuf_query, bpf_skb_load_bytes, bpf_xdp_get_buff_len, bpf_xdp_load_bytes,
};
use aya_ebpf::macros::{classifier, map, xdp};
use aya_ebpf::maps::{Array, PerCpuArray, PerCpuHashMap, RingBuf};
use aya_ebpf::programs::{TcContext, XdpContext};
use netrec_recorder_common::{
    CONFIG_FLAGS, CONFIG_SLOTS, CONFIG_SNAPLEN, DIR_EGRESS, DIR_INGRESS, FLAG_RECORD_HEADERS, FlowCounters,
    FlowKey, MAX_SNAPLEN, PacketRecord, WAKEUP_BYTES, counter,
};

/// Per-flow, per-direction counters. A plain (not LRU) hash: when it is full the insert fails and
/// is counted (MAP_FULL) instead of silently evicting counters user space has not drained yet.
#[map]
static FLOWS: PerCpuHashMap<FlowKey, FlowCounters> = PerCpuHashMap::with_max_entries(65_536, 0);

#[map]
static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Packet-header records; user space sizes it at load time.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(4 * 1024 * 1024, 0);

/// Settings written by user space before attaching: [snaplen, flags].
#[map]
static CONFIG: Array<u32> = Array::with_max_entries(CONFIG_SLOTS, 0);

#[classifier]
pub fn netrec_ingress(ctx: TcContext) -> i32 {
    observe(&ctx, DIR_INGRESS);
    TC_ACT_UNSPEC
}

#[classifier]
pub fn netrec_egress(ctx: TcContext) -> i32 {
    observe(&ctx, DIR_EGRESS);
    TC_ACT_UNSPEC
}

/// XDP sees ingress only (before the stack allocates an skb): the cheapest hook for high rates.
#[xdp]
pub fn netrec_xdp(ctx: XdpContext) -> u32 {
    observe(&ctx, DIR_INGRESS);
    xdp_action::XDP_PASS
}

/// What the shared code needs from a program context: the linear packet bytes, the full length,
/// the interface, and a helper copy that may reach past the linear part.
trait Packet {
    fn data(&self) -> usize;
    fn data_end(&self) -> usize;
    /// Wire length of the whole packet (all fragments).
    fn len(&self) -> u32;
    fn ifindex(&self) -> u32;
    /// Copy `len` bytes from offset 0 into `dst`; 0 on success.
    fn load(&self, dst: *mut u8, len: u32) -> i64;
}

impl Packet for TcContext {
    #[inline(always)]
    fn data(&self) -> usize {
        TcContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        TcContext::data_end(self)
    }
    #[inline(always)]
    fn len(&self) -> u32 {
        TcContext::len(self)
    }
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // SAFETY: a classifier's context is the kernel's __sk_buff mirror.
        unsafe { (*(self.as_ptr() as *const __sk_buff)).ifindex }
    }
    #[inline(always)]
    fn load(&self, dst: *mut u8, len: u32) -> i64 {
        // SAFETY: the caller passes a buffer of at least `len` bytes.
        unsafe { bpf_skb_load_bytes(self.as_ptr(), 0, dst as *mut _, len) }
    }
}

impl Packet for XdpContext {
    #[inline(always)]
    fn data(&self) -> usize {
        XdpContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        XdpContext::data_end(self)
    }
    #[inline(always)]
    fn len(&self) -> u32 {
        // Includes the fragments of multi-buffer frames, like skb->len.
        unsafe { bpf_xdp_get_buff_len(self.ctx) as u32 }
    }
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        self.ingress_ifindex() as u32
    }
    #[inline(always)]
    fn load(&self, dst: *mut u8, len: u32) -> i64 {
        // SAFETY: the caller passes a buffer of at least `len` bytes.
        unsafe { bpf_xdp_load_bytes(self.ctx, 0, dst as *mut _, len) }
    }
}

#[inline(always)]
fn bump(idx: u32, by: u64) {
    if let Some(p) = COUNTERS.get_ptr_mut(idx) {
        // Per-CPU slot: no other CPU writes it, so a plain add is race-free.
        unsafe { *p += by };
    }
}

#[inline(always)]
fn config(idx: u32) -> u32 {
    CONFIG.get(idx).copied().unwrap_or(0)
}

#[inline(always)]
fn ptr_at<T, C: Packet>(ctx: &C, off: usize) -> Option<*const T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *const T)
}

/// One byte, read through a 2-byte bounds check: for a 1-byte check LLVM emits `p >= end`,
/// from which the verifier learns no packet range. Needs one byte of slack after `off`, which every
/// caller has (each reads a field followed by more header).
#[inline(always)]
fn u8_at<C: Packet>(ctx: &C, off: usize) -> Option<u8> {
    ptr_at::<[u8; 2], C>(ctx, off).map(|p| unsafe { (*p)[0] })
}

#[inline(always)]
fn be16_at<C: Packet>(ctx: &C, off: usize) -> Option<u16> {
    ptr_at::<[u8; 2], C>(ctx, off).map(|p| u16::from_be_bytes(unsafe { *p }))
}

#[inline(always)]
fn is_vlan_tpid(ethertype: u16) -> bool {
    ethertype == 0x8100 || ethertype == 0x88a8 || ethertype == 0x9100
}

fn observe<C: Packet>(ctx: &C, direction: u8) {
    let now = unsafe { bpf_ktime_get_ns() };
    let len = ctx.len();
    bump(counter::PACKETS, 1);
    bump(counter::BYTES, len as u64);

    if let Some((key, flags, payload)) = parse(ctx) {
        update_flow(&key, flags, direction, len, payload, now);
    } else {
        bump(counter::NON_IP, 1);
    }

    if config(CONFIG_FLAGS) & FLAG_RECORD_HEADERS != 0 {
        record(ctx, direction, len, now);
    }
}

/// Parse Ethernet (+2 VLAN tags, + an MPLS stack of up to 4 labels), IPv4/IPv6, TCP/UDP/SCTP/ICMP into
/// a flow key and the TCP flags.
#[inline(always)]
fn parse<C: Packet>(ctx: &C) -> Option<(FlowKey, u8, u32)> {
    let mut off = 12usize;
    let mut ethertype = be16_at(ctx, off)?;
    off += 2;
    // Up to two 802.1Q / 802.1ad tags (and the pre-standard QinQ TPID 0x9100, as user space;
    // unrolled: the verifier wants bounded loops).
    if is_vlan_tpid(ethertype) {
        ethertype = be16_at(ctx, off + 2)?;
        off += 4;
        if is_vlan_tpid(ethertype) {
            ethertype = be16_at(ctx, off + 2)?;
            off += 4;
        }
    }
    // An MPLS label stack (up to 4 entries, as user space would count them): skip to the
    // bottom of stack; IPv4/IPv6 by the first nibble after it. Deeper stacks and pseudowires
    // (nibble 0: an Ethernet frame) are left to user space, which decodes the header record.
    if ethertype == 0x8847 || ethertype == 0x8848 {
        let mut bottom = false;
        let mut labels = 0;
        while labels < 4 && !bottom {
            bottom = u8_at(ctx, off + 2)? & 1 != 0;
            off += 4;
            labels += 1;
        }
        if !bottom {
            return None;
        }
        ethertype = match u8_at(ctx, off)? >> 4 {
            4 => 0x0800,
            6 => 0x86dd,
            _ => return None,
        };
    }
    let mut key = FlowKey { ifindex: ctx.ifindex(), ..FlowKey::default() };
    let l4: usize;
    let first_fragment: bool;
    // End of the IP packet: Ethernet pads short frames, and padding is not payload.
    let ip_end: usize;
    match ethertype {
        0x0800 => {
            let vihl = u8_at(ctx, off)?;
            let ihl = ((vihl & 0x0f) as usize) * 4;
            if ihl < 20 {
                return None;
            }
            // Total length 0: a segmentation-offload super-packet (TSO/GSO, GRO, BIG TCP past
            // 64 KiB), the whole frame, as user space and IPv6 payload length 0 read it.
            let total = be16_at(ctx, off + 2)? as usize;
            ip_end = if total == 0 { ctx.len() as usize } else { off + total };
            let frag = be16_at(ctx, off + 6)?;
            first_fragment = frag & 0x1fff == 0;
            key.proto = u8_at(ctx, off + 9)?;
            key.ip_version = 4;
            let src = ptr_at::<[u8; 4], C>(ctx, off + 12)?;
            let dst = ptr_at::<[u8; 4], C>(ctx, off + 16)?;
            key.src = FlowKey::v4_mapped(unsafe { *src });
            key.dst = FlowKey::v4_mapped(unsafe { *dst });
            l4 = off + (ihl & 0x3c);
        }
        0x86dd => {
            key.proto = u8_at(ctx, off + 6)?;
            key.ip_version = 6;
            // Payload length 0 is a jumbogram (or bogus): fall back to the frame length.
            let plen = be16_at(ctx, off + 4)? as usize;
            ip_end = if plen == 0 { ctx.len() as usize } else { off + 40 + plen };
            key.src = unsafe { *ptr_at::<[u8; 16], C>(ctx, off + 8)? };
            key.dst = unsafe { *ptr_at::<[u8; 16], C>(ctx, off + 24)? };
            // Extension headers are left to user space; the flow is keyed on the first next-header.
            first_fragment = key.proto != 44;
            l4 = off + 40;
        }
        _ => return None,
    }
    let mut flags = 0u8;
    // Offset where the transport payload starts (0 = unknown: payload not counted).
    let mut payload_at = 0usize;
    if first_fragment {
        match key.proto {
            6 => {
                key.src_port = be16_at(ctx, l4).unwrap_or(0);
                key.dst_port = be16_at(ctx, l4 + 2).unwrap_or(0);
                flags = u8_at(ctx, l4 + 13).unwrap_or(0);
                let doff = (u8_at(ctx, l4 + 12).unwrap_or(0) >> 4) as usize * 4;
                if doff >= 20 {
                    payload_at = l4 + doff;
                }
                if flags & 0x02 != 0 {
                    bump(counter::SYN, 1);
                    if flags & 0x10 != 0 {
                        bump(counter::SYN_ACK, 1);
                    }
                }
                if flags & 0x04 != 0 {
                    bump(counter::RST, 1);
                }
            }
            17 => {
                key.src_port = be16_at(ctx, l4).unwrap_or(0);
                key.dst_port = be16_at(ctx, l4 + 2).unwrap_or(0);
                payload_at = l4 + 8;
            }
            // SCTP: ports from a whole 12-byte common header, as user space keys it.
            132 if l4 + 12 <= ip_end => {
                key.src_port = be16_at(ctx, l4).unwrap_or(0);
                key.dst_port = be16_at(ctx, l4 + 2).unwrap_or(0);
                payload_at = l4 + 12;
            }
            1 | 58 => {
                bump(counter::ICMP, 1);
                let t = u8_at(ctx, l4).unwrap_or(0);
                let c = u8_at(ctx, l4 + 1).unwrap_or(0);
                key.dst_port = ((t as u16) << 8) | c as u16;
            }
            _ => {}
        }
    }
    let end = if ip_end < ctx.len() as usize { ip_end } else { ctx.len() as usize };
    let payload = if payload_at > 0 && payload_at < end { (end - payload_at) as u32 } else { 0 };
    Some((key, flags, payload))
}

#[inline(always)]
fn update_flow(key: &FlowKey, flags: u8, direction: u8, len: u32, payload: u32, now: u64) {
    if let Some(c) = FLOWS.get_ptr_mut(key) {
        let c = unsafe { &mut *c };
        c.packets += 1;
        c.bytes += len as u64;
        c.payload_bytes += payload as u64;
        c.tcp_flags |= flags;
        if c.first_ns == 0 {
            c.first_ns = now;
        }
        c.last_ns = now;
        return;
    }
    let fresh = FlowCounters {
        packets: 1,
        bytes: len as u64,
        payload_bytes: payload as u64,
        first_ns: now,
        last_ns: now,
        tcp_flags: flags,
        direction,
        _pad: [0; 6],
    };
    match FLOWS.insert(key, &fresh, BPF_NOEXIST as u64) {
        Ok(()) => {}
        // EEXIST: another CPU created the entry between our lookup and insert; our per-CPU slot
        // exists now, so count the packet there.
        Err(-17) => match FLOWS.get_ptr_mut(key) {
            Some(c) => {
                let c = unsafe { &mut *c };
                c.packets += 1;
                c.bytes += len as u64;
                c.payload_bytes += payload as u64;
                c.tcp_flags |= flags;
                if c.first_ns == 0 {
                    c.first_ns = now;
                }
                c.last_ns = now;
                c.direction = direction;
            }
            None => bump(counter::MAP_BUSY, 1),
        },
        Err(_) => bump(counter::MAP_FULL, 1),
    }
}

#[inline(always)]
fn record<C: Packet>(ctx: &C, direction: u8, len: u32, now: u64) {
    let Some(mut entry) = EVENTS.reserve::<PacketRecord>(0) else {
        bump(counter::RING_DROPS, 1);
        return;
    };
    let snaplen = config(CONFIG_SNAPLEN);
    let mut cap = if len < snaplen { len } else { snaplen };
    if cap as usize > MAX_SNAPLEN {
        cap = MAX_SNAPLEN as u32;
    }
    let rec = entry.as_mut_ptr();
    let mut copied = 0u32;
    if cap > 0 {
        // For cap in [1, MAX_SNAPLEN] this is cap itself, written so that the verifier can
        // prove the range [1, MAX_SNAPLEN] on the very register passed to the helper
        // (a plain range check gets split across registers by LLVM). MAX_SNAPLEN is a power of two.
        let cap = ((cap - 1) & (MAX_SNAPLEN as u32 - 1)) + 1;
        // SAFETY: rec points at a reserved PacketRecord; cap <= MAX_SNAPLEN = data.len().
        let ret = ctx.load(unsafe { (*rec).data.as_mut_ptr() }, cap);
        if ret == 0 {
            copied = cap;
        }
    }
    unsafe {
        (*rec).meta.ts_ns = now;
        (*rec).meta.ifindex = ctx.ifindex();
        (*rec).meta.wire_len = len;
        (*rec).meta.cap_len = copied as u16;
        (*rec).meta.direction = direction;
        (*rec).meta._pad = [0; 5];
    }
    // Wake the reader only when enough is queued: a wakeup per record costs ~3 us per packet.
    let avail = unsafe { bpf_ringbuf_query(&EVENTS as *const RingBuf as *mut _, BPF_RB_AVAIL_DATA as u64) };
    let flags = if avail >= WAKEUP_BYTES { BPF_RB_FORCE_WAKEUP } else { BPF_RB_NO_WAKEUP };
    entry.submit(flags as u64);
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
