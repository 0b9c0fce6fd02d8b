/* The statistics report of one host (D2.3 §2.6.1), built from the inventory, the host counters
 * and the guests, and sent as authenticated datagrams on EtherType 0x88B6. */
#ifndef MV_AGENT_STATS_H
#define MV_AGENT_STATS_H

#include <stdint.h>

#include "mv/guests.h"
#include "mv/hostcounters.h"
#include "mv/inventory.h"
#include "mv/stats_frame.h"

/* A CPU pool: a resource group's cores on this host. Until the controller pushes pool
 * definitions there is one default pool (id 0) of every online CPU. */
#define MV_AGENT_MAX_POOL_CPUS 1024
struct mv_agent_pool {
    uint32_t id;
    unsigned ncpus;
    int cpus[MV_AGENT_MAX_POOL_CPUS];
};

/* Fills r (reset first) with every group: host, pCPU, NUMA, pool, guest, vCPU, guest memory,
 * VIF, VBD. pools NULL / npools 0: the default pool. realtime_ns stamps the report. */
void mv_agent_stats_build(struct mv_stats_report *r, uint64_t node_id, uint32_t report_id,
                          uint32_t interval_ms, uint64_t realtime_ns,
                          const struct mv_inventory *inv, const struct mv_host_counters *hc,
                          const struct mv_guests *gs, const struct mv_agent_pool *pools,
                          unsigned npools);

#endif
