// SPDX-License-Identifier: GPL-2.0
/* XDP steering program of the AF_XDP port: frames whose EtherType is in mv_ethertypes go to the
 * AF_XDP socket bound to the receiving queue (mv_xsks); everything else, and any frame whose
 * queue has no socket, continues to the kernel stack (XDP_PASS). Key 0 in mv_ethertypes means
 * "every EtherType" (0 is never a valid EtherType: values below 0x600 are 802.3 lengths).
 * Built as xdp.frags so jumbo frames on multi-buffer drivers are accepted; only the Ethernet
 * header, which is always in the linear part, is read. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MV_XSK_MAX_QUEUES  64
#define MV_ETHERTYPE_SLOTS 8

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, MV_XSK_MAX_QUEUES);
    __type(key, __u32);
    __type(value, __u32);
} mv_xsks SEC(".maps");

/* Keys are EtherTypes as they appear on the wire (network byte order). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, MV_ETHERTYPE_SLOTS);
    __type(key, __u16);
    __type(value, __u8);
} mv_ethertypes SEC(".maps");

SEC("xdp.frags")
int mv_xdp_steer(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    __u16 any = 0;
    __u16 ethertype;

    if (data + 14 > data_end)
        return XDP_PASS;
    ethertype = *(__u16 *)(data + 12);
    if (!bpf_map_lookup_elem(&mv_ethertypes, &ethertype) &&
        !bpf_map_lookup_elem(&mv_ethertypes, &any))
        return XDP_PASS;
    /* The low bits of flags are the action when the queue has no socket. */
    return bpf_redirect_map(&mv_xsks, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
