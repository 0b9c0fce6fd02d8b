/* D2.3's error model (§3.5.2.4.2): {code, message, errors: [{code, message, field, detail}]}.
 * The numeric codes are stable; messages may be reworded. docs/api/README.md lists them all. */
#ifndef MVCTLD_ERRORS_H
#define MVCTLD_ERRORS_H

#include <jansson.h>

enum mvctld_error_code {
    /* body shape, any object */
    MVE_FIELD_REQUIRED = 100,
    MVE_FIELD_TYPE = 101,
    MVE_FIELD_UNKNOWN = 102,
    MVE_BODY_NOT_OBJECT = 103,
    MVE_FIELD_IMMUTABLE = 104,
    MVE_FIELD_READ_ONLY = 105,
    MVE_DUPLICATE_ID = 106,
    /* datastores, D2.3 §3.5.2.1 */
    MVE_DS_NAME_EMPTY = 1001,
    MVE_DS_NAME_TOO_LONG = 1002,
    MVE_DS_NAME_RESERVED = 1003,
    MVE_DS_NAME_CHARS = 1004,
    MVE_DS_REPLICAS_LOW = 1005,
    MVE_DS_OVERCOMMIT_HIGH = 1006,
    MVE_DS_DISKS_EMPTY = 1007,
    MVE_DS_DISKS_UNKNOWN = 1008,
    /* datastores, our additions (README) */
    MVE_DS_DISK_IN_USE = 1009,
    MVE_DS_REPLICAS_OVER_DISKS = 1010,
    MVE_DS_OVERCOMMIT_INVALID = 1011,
    MVE_DS_REPAIR_TRIGGER = 1012,
    MVE_DS_REPAIR_PERIOD = 1013,
    MVE_DS_REPAIR_NUM = 1014,
    MVE_DS_IN_USE = 1015,
    MVE_DS_STATE = 1016,
    MVE_DS_NAME_TAKEN = 1017,
    MVE_DS_DISK_NOT_MEMBER = 1018,
    MVE_DS_DISK_UNREACHABLE = 1019, /* wire: the disk's node is offline or has no agent */
    MVE_DS_BUSY = 1020,             /* wire: state edit while formatting or failed */
    /* resource groups, D2.3 §3.4.2 */
    MVE_RG_NAME_EMPTY = 2001,
    MVE_RG_CORES_EMPTY = 2002,
    MVE_RG_DATASTORES_EMPTY = 2003,
    MVE_RG_NETWORKS_EMPTY = 2004,
    MVE_RG_UNKNOWN_ID = 2005,
    MVE_RG_OVERCOMMIT_LOW = 2006,
    MVE_RG_OVERCOMMIT_HIGH = 2007,
    MVE_RG_PINNING_OVERCOMMIT = 2008,
    /* resource groups, our additions */
    MVE_RG_FT_UNIT = 2009,
    MVE_RG_FT_MAX_FAILURES = 2010,
    MVE_RG_CORE_TAKEN = 2011,
    MVE_RG_NOT_MEMBER = 2012,
    /* networks (Appendix 6.2 #7) */
    MVE_NET_NAME_EMPTY = 3001,
    MVE_NET_DHCP_TYPE = 3002,
    MVE_NET_IP_VERSION = 3003,
    MVE_NET_CIDR = 3004,
    MVE_NET_IP_RANGE = 3005,
    MVE_NET_GATEWAY = 3006,
    MVE_NET_VLAN_TAG = 3007,
    MVE_NET_VLAN_FLAGS = 3008,
    MVE_NET_IN_USE = 3009,
    MVE_NET_DHCP_OPTIONS = 3010,
    MVE_NET_MAC = 3011,
    /* nodes */
    MVE_NODE_ONLINE = 4001,
    MVE_NODE_IN_USE = 4002,
    /* volumes (D2.3 6.1.4 Volumes; our additions from 5003) */
    MVE_VOL_NAME_EMPTY = 5001,
    MVE_VOL_SIZE = 5002,
    MVE_VOL_DATASTORE = 5003,
    MVE_VOL_NAME_TAKEN = 5004,
    MVE_VOL_NO_DISKS = 5005, /* fewer usable disks on distinct online hosts than replicas */
    MVE_VOL_NO_SPACE = 5006,
    MVE_VOL_IN_USE = 5007,
    MVE_VOL_SHRINK = 5008,
    MVE_VOL_BUSY = 5009, /* an operation on its replicas is still pending, or one failed */
    /* instances */
    MVE_INST_NAME_EMPTY = 6001,
    MVE_INST_NAME_TAKEN = 6002,
    MVE_INST_GROUP = 6003,
    MVE_INST_VCPUS = 6004,
    MVE_INST_RAM = 6005,
    MVE_INST_BOOT = 6006,
    MVE_INST_PATH = 6007,
    MVE_INST_VOLUME = 6008,
    MVE_INST_VOLUME_IN_USE = 6009,
    MVE_INST_VOLUME_GROUP = 6010,
    MVE_INST_NETWORK = 6011,
    MVE_INST_MAC = 6012,
    MVE_INST_NODE = 6013,
    MVE_INST_NO_CORES = 6020,  /* no host with that many free vCPUs under cpu_overcommit */
    MVE_INST_NO_MEMORY = 6021, /* no host with that much free memory */
    MVE_INST_NO_PIN = 6022,    /* pinning: not that many free dedicated cores on a host */
    MVE_INST_ACTION = 6030,
    MVE_INST_ACTION_STATE = 6031, /* the action does not apply now (migrate to itself, ...) */
};

struct mvctld_errors {
    json_t *list; /* array of {code, message, field, detail} */
};

void mvctld_errors_init(struct mvctld_errors *e);
void mvctld_errors_free(struct mvctld_errors *e);
int mvctld_errors_count(const struct mvctld_errors *e);
/* detail may be NULL. */
void mvctld_errors_add(struct mvctld_errors *e, int code, const char *field, const char *message,
                       const char *detail);
int mvctld_errors_has(const struct mvctld_errors *e, int code);

/* {code: status, message} (+ errors when e has any). Steals nothing; e may be NULL. */
json_t *mvctld_error_body(int status, const char *message, const struct mvctld_errors *e);

#endif
