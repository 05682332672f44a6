//go:build ignore

// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// onet_dispatch: the XDP dispatcher of onetdp.
//
// It classifies every received frame into one of three classes, counts it
// per CPU, records RoCEv2 and onet flows in an LRU hash, optionally drops a
// configured fraction of each class (fault injection), and redirects RoCEv2
// and onet datagrams to the AF_XDP socket bound to the receive queue.
//
// Parsing rules (the Go package documentation repeats them for users):
//   - Ethernet, then at most one 802.1Q or 802.1ad tag. A second tag makes
//     the frame "other" (not malformed).
//   - IPv4: version must be 4, 5 <= IHL <= 15, the header and total length
//     must fit in the frame and total length >= header length. Any fragment
//     (MF set or a non-zero offset) is "other": its UDP header is not parsed.
//   - IPv6: version must be 6, 40 + payload length must fit in the frame.
//     Up to IPV6_MAX_EXT_HDRS hop-by-hop, routing and destination-options
//     headers are skipped; any other next header (fragment, ESP, ...) makes
//     the frame "other".
//   - UDP: the 8-byte header must fit, and 8 <= UDP length <= IP payload.
// A frame that violates one of these checks is malformed: it is counted in
// the "other" class with parse_err incremented, and passed to the kernel
// untouched (never fault-dropped, never redirected).

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define CLASS_ROCEV2 0
#define CLASS_ONET 1
#define CLASS_OTHER 2
#define NUM_CLASSES 3

#define ROCEV2_UDP_PORT 4791
#define BTH_LEN 12
#define MAX_QUEUES 64
#define FLOW_ENTRIES 16384
#define IPV6_MAX_EXT_HDRS 4
#define PPM_SCALE 1000000

#define IPV4_MF 0x2000
#define IPV4_OFFSET 0x1fff

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ROUTING_ 43
#define IPPROTO_DSTOPTS_ 60

enum parse_result {
	PARSE_UDP = 0,	     // a well-formed UDP datagram: classify by port
	PARSE_OTHER = 1,     // well-formed but not UDP we look at
	PARSE_MALFORMED = 2, // failed a check: count parse_err, pass
};

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

// class_counters is the value of onet_counters, one per class and CPU.
struct class_counters {
	__u64 packets;
	__u64 bytes;
	__u64 ce;
	__u64 redirect_fail;
	__u64 parse_err;
	__u64 fault_drop;
};

// config is the single value of onet_config.
struct config {
	__u16 onet_port; // host order; 0 = onet class disabled
	__u16 pad0;
	__u32 pad1;
};

// flow_key identifies a RoCEv2 or onet flow. IPv4 addresses are stored
// v4-mapped (::ffff:a.b.c.d) with family 4.
struct flow_key {
	__u8 src[16];
	__u8 dst[16];
	__u16 sport; // host order
	__u16 dport; // host order
	__u32 qp;    // RoCEv2 destination QP (24 bits); 0 for onet or short payloads
	__u8 family; // 4 or 6
	__u8 proto;  // IPPROTO_UDP
	__u8 class;  // CLASS_ROCEV2 or CLASS_ONET
	__u8 pad;
};

struct flow_value {
	__u64 packets;
	__u64 bytes;
	__u64 ce;
	__u64 first_seen_ns; // bpf_ktime_get_ns (CLOCK_MONOTONIC)
	__u64 last_seen_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NUM_CLASSES);
	__type(key, __u32);
	__type(value, struct class_counters);
} onet_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} onet_config SEC(".maps");

// onet_faults holds, per class, the drop probability in parts per million.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NUM_CLASSES);
	__type(key, __u32);
	__type(value, __u32);
} onet_faults SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FLOW_ENTRIES);
	__type(key, struct flow_key);
	__type(value, struct flow_value);
} onet_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} onet_xsks SEC(".maps");

struct pkt {
	struct flow_key key;
	__u32 udp_payload_len; // UDP length - 8
	__u8 ce;
};

// parse_udp checks the UDP header at udp, given the IP payload length
// ip_payload (already known to fit in the frame), and fills ports and QP.
static __always_inline int parse_udp(struct udphdr *udp, __u32 ip_payload, void *data_end,
				     struct pkt *p)
{
	if ((void *)(udp + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip_payload < sizeof(*udp))
		return PARSE_MALFORMED;
	__u32 ulen = bpf_ntohs(udp->len);
	if (ulen < sizeof(*udp) || ulen > ip_payload)
		return PARSE_MALFORMED;

	p->key.sport = bpf_ntohs(udp->source);
	p->key.dport = bpf_ntohs(udp->dest);
	p->key.proto = IPPROTO_UDP;
	p->udp_payload_len = ulen - sizeof(*udp);

	if (p->key.dport == ROCEV2_UDP_PORT && p->udp_payload_len >= BTH_LEN) {
		__u8 *bth = (__u8 *)(udp + 1);
		if ((void *)(bth + BTH_LEN) > data_end)
			return PARSE_MALFORMED; // unreachable: ulen fits in the frame
		p->key.qp = ((__u32)bth[5] << 16) | ((__u32)bth[6] << 8) | (__u32)bth[7];
	}
	return PARSE_UDP;
}

static __always_inline int parse_ipv4(void *l3, void *data_end, struct pkt *p)
{
	struct iphdr *ip = l3;
	if ((void *)(ip + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip->version != 4 || ip->ihl < 5)
		return PARSE_MALFORMED;
	__u32 hlen = (__u32)ip->ihl * 4;
	if (l3 + hlen > data_end)
		return PARSE_MALFORMED;
	__u32 tot = bpf_ntohs(ip->tot_len);
	if (tot < hlen)
		return PARSE_MALFORMED;
	if (l3 + tot > data_end)
		return PARSE_MALFORMED;

	p->ce = (ip->tos & 3) == 3;
	p->key.family = 4;
	p->key.src[10] = 0xff;
	p->key.src[11] = 0xff;
	__builtin_memcpy(&p->key.src[12], &ip->saddr, 4);
	p->key.dst[10] = 0xff;
	p->key.dst[11] = 0xff;
	__builtin_memcpy(&p->key.dst[12], &ip->daddr, 4);

	if (ip->frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET))
		return PARSE_OTHER;
	if (ip->protocol != IPPROTO_UDP)
		return PARSE_OTHER;
	return parse_udp(l3 + hlen, tot - hlen, data_end, p);
}

static __always_inline int parse_ipv6(void *l3, void *data_end, struct pkt *p)
{
	struct ipv6hdr *ip6 = l3;
	if ((void *)(ip6 + 1) > data_end)
		return PARSE_MALFORMED;
	if (ip6->version != 6)
		return PARSE_MALFORMED;
	__u32 plen = bpf_ntohs(ip6->payload_len);
	if ((void *)(ip6 + 1) + plen > data_end)
		return PARSE_MALFORMED;

	// ECN is the low two bits of the traffic class, which straddles the
	// priority nibble and the top nibble of flow_lbl[0].
	p->ce = ((ip6->flow_lbl[0] >> 4) & 3) == 3;
	p->key.family = 6;
	__builtin_memcpy(p->key.src, &ip6->saddr, 16);
	__builtin_memcpy(p->key.dst, &ip6->daddr, 16);

	__u8 nh = ip6->nexthdr;
	__u32 off = 0; // bytes of extension headers consumed, within plen
	void *cur = (void *)(ip6 + 1);

#pragma unroll
	for (int i = 0; i < IPV6_MAX_EXT_HDRS; i++) {
		if (nh != IPPROTO_HOPOPTS_ && nh != IPPROTO_ROUTING_ && nh != IPPROTO_DSTOPTS_)
			break;
		struct ipv6_opt_hdr *oh = cur;
		if ((void *)(oh + 1) > data_end)
			return PARSE_MALFORMED;
		__u32 elen = ((__u32)oh->hdrlen + 1) * 8;
		if (off + elen > plen)
			return PARSE_MALFORMED;
		nh = oh->nexthdr;
		off += elen;
		cur += elen;
	}
	if (nh != IPPROTO_UDP)
		return PARSE_OTHER;
	return parse_udp(cur, plen - off, data_end, p);
}

// parse fills p and returns a parse_result.
static __always_inline int parse(struct xdp_md *ctx, struct pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return PARSE_MALFORMED;
	__u16 proto = eth->h_proto;
	void *l3 = (void *)(eth + 1);

	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vh = l3;
		if ((void *)(vh + 1) > data_end)
			return PARSE_MALFORMED;
		proto = vh->encap_proto;
		l3 = (void *)(vh + 1);
	}

	if (proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(l3, data_end, p);
	if (proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(l3, data_end, p);
	return PARSE_OTHER;
}

static __always_inline void update_flow(struct pkt *p, __u32 class, __u64 bytes)
{
	__u64 now = bpf_ktime_get_ns();
	p->key.class = class;

	struct flow_value *v = bpf_map_lookup_elem(&onet_flows, &p->key);
	if (!v) {
		struct flow_value nv = {
			.packets = 1,
			.bytes = bytes,
			.ce = p->ce,
			.first_seen_ns = now,
			.last_seen_ns = now,
		};
		if (bpf_map_update_elem(&onet_flows, &p->key, &nv, BPF_NOEXIST) == 0)
			return;
		// Another CPU inserted it first: add to its entry.
		v = bpf_map_lookup_elem(&onet_flows, &p->key);
		if (!v)
			return;
	}
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, bytes);
	if (p->ce)
		__sync_fetch_and_add(&v->ce, 1);
	v->last_seen_ns = now;
}

SEC("xdp")
int onet_dispatch(struct xdp_md *ctx)
{
	struct pkt p = {};
	__u64 bytes = bpf_xdp_get_buff_len(ctx);
	int res = parse(ctx, &p);

	__u32 class = CLASS_OTHER;
	if (res == PARSE_UDP) {
		if (p.key.dport == ROCEV2_UDP_PORT) {
			class = CLASS_ROCEV2;
		} else {
			__u32 zero = 0;
			struct config *cfg = bpf_map_lookup_elem(&onet_config, &zero);
			if (cfg && cfg->onet_port != 0 && p.key.dport == cfg->onet_port)
				class = CLASS_ONET;
		}
	}

	struct class_counters *cc = bpf_map_lookup_elem(&onet_counters, &class);
	if (!cc)
		return XDP_PASS;
	cc->packets++;
	cc->bytes += bytes;
	if (res == PARSE_MALFORMED) {
		cc->parse_err++;
		return XDP_PASS;
	}
	if (p.ce)
		cc->ce++;

	if (class != CLASS_OTHER)
		update_flow(&p, class, bytes);

	__u32 *ppm = bpf_map_lookup_elem(&onet_faults, &class);
	if (ppm && *ppm != 0 && bpf_get_prandom_u32() % PPM_SCALE < *ppm) {
		cc->fault_drop++;
		return XDP_DROP;
	}

	if (class == CLASS_OTHER)
		return XDP_PASS;

	__u32 qid = ctx->rx_queue_index;
	if (!bpf_map_lookup_elem(&onet_xsks, &qid)) {
		cc->redirect_fail++;
		return XDP_PASS;
	}
	long act = bpf_redirect_map(&onet_xsks, qid, XDP_PASS);
	if (act != XDP_REDIRECT)
		cc->redirect_fail++;
	return act;
}

char _license[] SEC("license") = "Dual MIT/GPL";
