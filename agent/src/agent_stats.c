/* Statistics report assembly: one record per member of each §2.6.1 group. */
#include "mv/agent_stats.h"

#include <string.h>

#include "mv/util.h"

#define BIT(id) (1u << (id))

static void build_host_cpus(struct mv_stats_report *r, uint64_t now, const struct mv_inventory *inv,
                            const struct mv_host_counters *hc)
{
    struct mv_stats_host *h = &r->host[0];
    r->n_host = 1;
    h->timestamp_ns = now;
    h->pcpus = (uint32_t)inv->ncpus;
    h->numa_nodes = (uint32_t)inv->nnodes;
    h->mem_total = inv->mem_total_kb * 1024;
    h->mem_free = inv->mem_free_kb * 1024;
    h->load_avg_milli = (uint32_t)(inv->loadavg[0] * 1000.0 + 0.5);
    h->present = BIT(MV_STATS_F_HOST_TIMESTAMP) | BIT(MV_STATS_F_HOST_PCPUS) |
                 BIT(MV_STATS_F_HOST_CPU_POOLS) | BIT(MV_STATS_F_HOST_NUMA_NODES) |
                 BIT(MV_STATS_F_HOST_GUESTS) | BIT(MV_STATS_F_HOST_MEM_TOTAL) |
                 BIT(MV_STATS_F_HOST_MEM_FREE) | BIT(MV_STATS_F_HOST_LOAD_AVG);
    for (int i = 0; i < hc->ncpus && r->n_pcpu < MV_STATS_MAX_PCPUS; i++) {
        struct mv_stats_pcpu *p = &r->pcpu[r->n_pcpu++];
        p->cpu_id = (uint32_t)hc->cpu_ids[i];
        p->timestamp_ns = now;
        p->cpu_time_ns = hc->cpu_busy_ns[i];
        p->present = BIT(MV_STATS_F_PCPU_TIMESTAMP) | BIT(MV_STATS_F_PCPU_CPU_TIME);
    }
    for (int i = 0; i < inv->nnodes && r->n_numa < MV_STATS_MAX_NUMA; i++) {
        struct mv_stats_numa *n = &r->numa[r->n_numa++];
        n->node_id = (uint32_t)inv->nodes[i].id;
        n->mem_total = inv->nodes[i].mem_total_kb * 1024;
        n->mem_free = inv->nodes[i].mem_free_kb * 1024;
        n->present = BIT(MV_STATS_F_NUMA_MEM_TOTAL) | BIT(MV_STATS_F_NUMA_MEM_FREE);
    }
}

/* Whether any vCPU of g last ran on one of the pool's CPUs. */
static bool guest_in_pool(const struct mv_guest *g, const struct mv_agent_pool *p)
{
    for (unsigned v = 0; v < g->n_vcpus; v++)
        for (unsigned c = 0; c < p->ncpus; c++)
            if (g->vcpu[v].last_pcpu == p->cpus[c])
                return true;
    return false;
}

static void build_pools(struct mv_stats_report *r, const struct mv_inventory *inv,
                        const struct mv_guests *gs, const struct mv_agent_pool *pools,
                        unsigned npools)
{
    if (!pools || npools == 0) {
        struct mv_stats_pool *p = &r->pool[r->n_pool++];
        unsigned online = 0;
        for (int i = 0; i < inv->ncpus; i++)
            online += inv->cpus[i].online ? 1 : 0;
        p->pool_id = 0;
        p->cpus = online;
        p->guests = gs ? gs->n : 0;
        p->load_avg_milli = (uint32_t)(inv->loadavg[0] * 1000.0 + 0.5);
        p->present =
            BIT(MV_STATS_F_POOL_LOAD_AVG) | BIT(MV_STATS_F_POOL_CPUS) | BIT(MV_STATS_F_POOL_GUESTS);
        return;
    }
    for (unsigned i = 0; i < npools && r->n_pool < MV_STATS_MAX_POOLS; i++) {
        struct mv_stats_pool *p = &r->pool[r->n_pool++];
        p->pool_id = pools[i].id;
        p->cpus = pools[i].ncpus;
        for (unsigned k = 0; gs && k < gs->n; k++)
            p->guests += guest_in_pool(&gs->g[k], &pools[i]) ? 1 : 0;
        /* The load of a pool is its share of the host's run queue, by CPU count. */
        unsigned online = inv->ncpus > 0 ? (unsigned)inv->ncpus : 1;
        p->load_avg_milli = (uint32_t)(inv->loadavg[0] * 1000.0 * pools[i].ncpus / online + 0.5);
        p->present =
            BIT(MV_STATS_F_POOL_LOAD_AVG) | BIT(MV_STATS_F_POOL_CPUS) | BIT(MV_STATS_F_POOL_GUESTS);
    }
}

static void build_guests(struct mv_stats_report *r, uint64_t now, const struct mv_guests *gs)
{
    for (unsigned k = 0; gs && k < gs->n && r->n_guest < MV_STATS_MAX_GUESTS; k++) {
        const struct mv_guest *g = &gs->g[k];
        struct mv_stats_guest *sg = &r->guest[r->n_guest++];
        memcpy(sg->uuid, g->uuid, 16);
        for (unsigned v = 0; v < g->n_vcpus && r->n_vcpu < MV_STATS_MAX_VCPUS; v++) {
            struct mv_stats_vcpu *sv = &r->vcpu[r->n_vcpu++];
            memcpy(sv->uuid, g->uuid, 16);
            sv->vcpu_id = v;
            sv->timestamp_ns = now;
            sv->util_centipct = g->vcpu[v].util_centipct;
            sv->cpu_time_ns = g->vcpu[v].cpu_time_ns;
            sv->present = BIT(MV_STATS_F_VCPU_TIMESTAMP) | BIT(MV_STATS_F_VCPU_UTIL) |
                          BIT(MV_STATS_F_VCPU_CPU_TIME);
        }
        struct mv_stats_guest_mem *m = &r->guest_mem[r->n_guest_mem++];
        memcpy(m->uuid, g->uuid, 16);
        m->timestamp_ns = now;
        m->used = g->mem_used;
        m->max = g->mem_max;
        m->present =
            BIT(MV_STATS_F_GMEM_TIMESTAMP) | BIT(MV_STATS_F_GMEM_USED) | BIT(MV_STATS_F_GMEM_MAX);
        for (unsigned i = 0; i < g->n_vif && r->n_vif < MV_STATS_MAX_VIFS; i++) {
            const struct mv_guest_vif *v = &g->vif[i];
            struct mv_stats_vif *sv = &r->vif[r->n_vif++];
            memcpy(sv->uuid, g->uuid, 16);
            snprintf(sv->vif_id, sizeof sv->vif_id, "%s", v->id);
            sv->timestamp_ns = now;
            sv->present = BIT(MV_STATS_F_VIF_TIMESTAMP);
            if (!v->valid)
                continue; /* the TAP is gone: the record stays, the counters are unknown */
            sv->rx_bytes = v->rx_bytes;
            sv->rx_packets = v->rx_packets;
            sv->rx_errors = v->rx_errors;
            sv->rx_drops = v->rx_drops;
            sv->tx_bytes = v->tx_bytes;
            sv->tx_packets = v->tx_packets;
            sv->tx_errors = v->tx_errors;
            sv->tx_drops = v->tx_drops;
            for (unsigned f = MV_STATS_F_VIF_RX_BYTES; f <= MV_STATS_F_VIF_TX_DROPS; f++)
                sv->present |= BIT(f);
        }
        for (unsigned i = 0; i < g->n_vbd && r->n_vbd < MV_STATS_MAX_VBDS; i++) {
            const struct mv_guest_vbd *b = &g->vbd[i];
            struct mv_stats_vbd *sb = &r->vbd[r->n_vbd++];
            memcpy(sb->uuid, g->uuid, 16);
            snprintf(sb->vbd_id, sizeof sb->vbd_id, "%s", b->id);
            snprintf(sb->backing, sizeof sb->backing, "%s", b->backing);
            snprintf(sb->device, sizeof sb->device, "%s", b->device);
            sb->timestamp_ns = now;
            /* mvvmm does not report per-disk I/O counters yet: those fields are left out
             * (absent from the present mask), not sent as zeros. */
            sb->present = BIT(MV_STATS_F_VBD_TIMESTAMP) | BIT(MV_STATS_F_VBD_BACKING) |
                          BIT(MV_STATS_F_VBD_DEVICE);
        }
    }
}

void mv_agent_stats_build(struct mv_stats_report *r, uint64_t node_id, uint32_t report_id,
                          uint32_t interval_ms, uint64_t realtime_ns,
                          const struct mv_inventory *inv, const struct mv_host_counters *hc,
                          const struct mv_guests *gs, const struct mv_agent_pool *pools,
                          unsigned npools)
{
    mv_stats_report_reset(r);
    r->node_id = node_id;
    r->report_id = report_id;
    r->timestamp_ns = realtime_ns;
    r->interval_ms = interval_ms;
    build_host_cpus(r, realtime_ns, inv, hc);
    build_pools(r, inv, gs, pools, npools);
    build_guests(r, realtime_ns, gs);
    r->host[0].cpu_pools = r->n_pool;
    r->host[0].guests = r->n_guest;
}
