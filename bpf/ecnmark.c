//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// onet_ecn_mark: an in-kernel ECN marker for tc egress (tcx).
//
// It keeps a virtual ("phantom") queue for the interface it is attached to:
// every frame adds its length, and the queue drains at a configured rate,
// like a queue in front of a link slightly slower than the real one. When
// the queue, after adding the frame, is at least Kmin bytes it marks CE
// with probability Pmax * (vq - Kmin) / (Kmax - Kmin) (RED style), and at
// Kmax or above it always marks. Only ECN-capable packets (ECT(0) or
// ECT(1)) are marked; a Not-ECT packet that would have been marked is
// counted (not_ect_over) and left alone, as is a packet already CE.
//
// Parsing: Ethernet, at most one 802.1Q/802.1ad tag, then an IPv4 header
// (version 4, IHL >= 5, the header within the frame) or an IPv6 header
// (version 6, 40 bytes within the frame). Anything else, malformed or not
// IP, is counted in parse_skipped and passed untouched. Every frame still
// occupies the phantom queue: it occupies the link.
//
// Queue arithmetic is fixed point: vq_fp holds bytes << ECN_FP_SHIFT and
// rate_fp holds bytes per nanosecond << ECN_FP_SHIFT (computed by the Go
// loader), so that no fraction of a byte is lost between closely spaced
// frames. The time since the last frame is capped at ECN_MAX_DT_NS, and the
// queue at ECN_MAX_VQ bytes, so the products never overflow.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define ECN_FP_SHIFT 20
#define ECN_MAX_DT_NS (1ULL << 32) // about 4.3 s
#define ECN_MAX_VQ (1ULL << 40)	   // bytes
#define ECN_PPM_SCALE 1000000
#define ECN_PULL_LEN 64 // Ethernet + VLAN + IPv6 header, rounded up

#define ECN_NOT_ECT 0
#define ECN_CE 3

// ecn_counters is the value of onet_ecn_counters (per CPU, one entry).
struct ecn_counters {
	__u64 packets;	     // every frame seen
	__u64 bytes;	     // their skb->len
	__u64 ect;	     // IP packets with ECT(0) or ECT(1)
	__u64 ce_marked;     // ECT packets this program marked CE
	__u64 not_ect_over;  // Not-ECT packets that would have been marked
	__u64 already_ce;    // IP packets that arrived with CE
	__u64 parse_skipped; // not IPv4/IPv6, or a malformed header
};

// ecn_config is the single value of onet_ecn_config.
struct ecn_config {
	__u64 rate_fp;	 // drain rate, bytes per ns << ECN_FP_SHIFT
	__u32 kmin;	 // bytes
	__u32 kmax;	 // bytes, >= kmin
	__u32 pmax_ppm;	 // marking probability at Kmax, parts per million
	__u32 enabled;	 // 0: count only, never mark, queue not tracked
};

// ecn_state is the phantom queue, the single value of onet_ecn_state.
struct ecn_state {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 vq_fp;   // queue, bytes << ECN_FP_SHIFT
	__u64 last_ns; // bpf_ktime_get_ns of the latest update
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ecn_counters);
} onet_ecn_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ecn_config);
} onet_ecn_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ecn_state);
} onet_ecn_state SEC(".maps");

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

// phantom_enqueue drains the queue for the time since the last frame, adds
// len bytes and returns the queue in bytes.
static __always_inline __u64 phantom_enqueue(struct ecn_state *st, __u64 rate_fp, __u64 now,
					     __u32 len)
{
	__u64 vq;

	bpf_spin_lock(&st->lock);
	__u64 dt = 0;
	if (now > st->last_ns) {
		dt = now - st->last_ns;
		st->last_ns = now;
	}
	if (dt > ECN_MAX_DT_NS)
		dt = ECN_MAX_DT_NS;
	__u64 drained = dt * rate_fp;
	vq = st->vq_fp > drained ? st->vq_fp - drained : 0;
	vq += (__u64)len << ECN_FP_SHIFT;
	if (vq > (ECN_MAX_VQ << ECN_FP_SHIFT))
		vq = ECN_MAX_VQ << ECN_FP_SHIFT;
	st->vq_fp = vq;
	bpf_spin_unlock(&st->lock);
	return vq >> ECN_FP_SHIFT;
}

// should_mark applies RED to the queue length vq (bytes).
static __always_inline int should_mark(struct ecn_config *cfg, __u64 vq)
{
	if (vq < cfg->kmin)
		return 0;
	if (vq >= cfg->kmax)
		return 1;
	// kmin <= vq < kmax, so kmax > kmin.
	__u64 p = (__u64)cfg->pmax_ppm * (vq - cfg->kmin) / (cfg->kmax - cfg->kmin);
	return bpf_get_prandom_u32() % ECN_PPM_SCALE < p;
}

// mark_decision counts a packet with ECN codepoint ecn and says whether to
// set CE on it: not when it already carries CE, not when RED says no, and
// never on a Not-ECT packet (counted as one that would have been marked).
static __always_inline int mark_decision(struct ecn_counters *cnt, struct ecn_config *cfg, __u64 vq, __u8 ecn)
{
	if (ecn == ECN_CE) {
		cnt->already_ce++;
		return 0;
	}
	if (ecn != ECN_NOT_ECT)
		cnt->ect++;
	if (!should_mark(cfg, vq))
		return 0;
	if (ecn == ECN_NOT_ECT) {
		cnt->not_ect_over++;
		return 0;
	}
	return 1;
}

// csum_replace16 updates an Internet checksum for a 16-bit word changing
// from old to new (RFC 1624, eqn. 3). All values in network order.
static __always_inline __u16 csum_replace16(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check;
	sum += (__u16)~old;
	sum += new;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("tc")
int onet_ecn_mark(struct __sk_buff *skb)
{
	__u32 zero = 0;
	struct ecn_counters *cnt = bpf_map_lookup_elem(&onet_ecn_counters, &zero);
	struct ecn_config *cfg = bpf_map_lookup_elem(&onet_ecn_config, &zero);
	struct ecn_state *st = bpf_map_lookup_elem(&onet_ecn_state, &zero);
	if (!cnt || !cfg || !st)
		return TC_ACT_UNSPEC;

	__u32 len = skb->len;
	cnt->packets++;
	cnt->bytes += len;
	if (!cfg->enabled)
		return TC_ACT_UNSPEC;

	__u64 now = bpf_ktime_get_ns();
	__u64 vq = phantom_enqueue(st, cfg->rate_fp, now, len);

	// Headers of a locally sent frame are normally linear already; pull
	// them if not (a no-op for a frame shorter than ECN_PULL_LEN that is).
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	if (data + ECN_PULL_LEN > data_end) {
		bpf_skb_pull_data(skb, len < ECN_PULL_LEN ? len : ECN_PULL_LEN);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
	}
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		goto skip;
	__u16 proto = eth->h_proto;
	void *l3 = (void *)(eth + 1);
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vh = l3;
		if ((void *)(vh + 1) > data_end)
			goto skip;
		proto = vh->encap_proto;
		l3 = (void *)(vh + 1);
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l3;
		if ((void *)(ip + 1) > data_end)
			goto skip;
		if (ip->version != 4 || ip->ihl < 5)
			goto skip;
		if (l3 + (__u32)ip->ihl * 4 > data_end)
			goto skip;
		if (!mark_decision(cnt, cfg, vq, ip->tos & 3))
			return TC_ACT_UNSPEC;
		// The first 16-bit word holds version/IHL and TOS.
		__u16 *word = l3;
		__u16 old = *word;
		ip->tos |= ECN_CE;
		ip->check = csum_replace16(ip->check, old, *word);
		cnt->ce_marked++;
		return TC_ACT_UNSPEC;
	}

	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l3;
		if ((void *)(ip6 + 1) > data_end)
			goto skip;
		if (ip6->version != 6)
			goto skip;
		// ECN: the low two bits of the traffic class, the top of flow_lbl[0].
		if (!mark_decision(cnt, cfg, vq, (ip6->flow_lbl[0] >> 4) & 3))
			return TC_ACT_UNSPEC;
		ip6->flow_lbl[0] |= ECN_CE << 4;
		cnt->ce_marked++;
		return TC_ACT_UNSPEC;
	}

skip:
	cnt->parse_skipped++;
	return TC_ACT_UNSPEC;
}

char _license[] SEC("license") = "Dual MIT/GPL";
