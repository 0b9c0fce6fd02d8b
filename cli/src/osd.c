/* osd: the D2.3 command-line client of mvctld's internal API. */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mv/config.h"
#include "mv/util.h"
#include "osd/filter.h"

enum opt_type {
    O_STR,          /* --x=value -> "field": "value" */
    O_INT,          /* integer */
    O_LIST,         /* a,b,c -> ["a","b","c"] */
    O_INT_LIST,     /* 1,2 -> [1,2] */
    O_FLAG,         /* --x (or --x=true/false) -> field = flag_value (negated with =false) */
    O_BOOL,         /* --x=true|false|1|0 */
    O_NOT_BOOL,     /* --thick=1 -> is_thin: false */
    O_ID,           /* the object id in the path */
    O_QUERY,        /* a query parameter */
    O_OBJ_LIST,     /* a,b -> [{"<key>": "a"}, {"<key>": "b"}]; field is "array.key" */
    O_OBJ_INT_LIST, /* 1,2 -> [{"<key>": 1}, ...] */
};

struct opt {
    const char *name;
    enum opt_type type;
    const char *field; /* dotted JSON path, or query parameter name */
    int flag_value;
    const char *help;
};

enum cmd_kind { K_LIST, K_GET, K_CREATE, K_EDIT, K_DELETE, K_ADD, K_REMOVE };

#define MAX_OPTS 24

struct command {
    const char *name, *summary;
    enum cmd_kind kind;
    const char *path;    /* /api/... ; "{id}" stands for the id */
    const char *columns; /* default table columns */
    const char *member;  /* K_ADD/K_REMOVE: the list option */
    const char *example;
    struct opt opts[MAX_OPTS];
};

/* The action of the instance action commands (merged into their body). */
static const char *action_of(const char *command)
{
    static const char *const map[][2] = {
        {"start_instance", "start"},     {"stop_instance", "stop"},
        {"reboot_instance", "reboot"},   {"pause_instance", "pause"},
        {"unpause_instance", "unpause"}, {"migrate_instance", "migrate"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i][0], command) == 0)
            return map[i][1];
    return NULL;
}

#define ID_OPT(what)                                                                               \
    {                                                                                              \
        "id", O_ID, NULL, 0, "The id of the " what "."                                             \
    }

#define DS_COLS "id,name,replicas,overcommit_disk,is_thin,total,available,state,disks.id"
#define DS_POLICY                                                                                  \
    {"overcommit", O_STR, "overcommit_disk", 0,                                                    \
     "The overcommit value of the space that the volumes can take (0-100 or unlimited)."},         \
        {"db_metadata", O_FLAG, "has_db_metadata", 1, "Enable a vdisk for backing up the DBs."},   \
        {"trigger_repair", O_STR, "repair_volume_policy.trigger", 0,                               \
         "How to trigger the repairs when the volumes are degraded, 'periodic' or 'manual'."},     \
        {"periodic_repair_sec", O_INT, "repair_volume_policy.period_seconds", 0,                   \
         "When trigger_repair is periodic, the period in seconds of the checks."},                 \
        {"num_of_repairs", O_INT, "repair_volume_policy.num_of_repairs", 0,                        \
         "The number of repairs it can do in parallel."},                                          \
    {                                                                                              \
        "description", O_STR, "description", 0, "The description of the object."                   \
    }

#define RG_COLS "id,name,cores,datastores,network_ids,cpu_overcommit,is_cpu_pinning_enabled"
#define RG_OPTS                                                                                    \
    {"name", O_STR, "name", 0, "The display name of the object."},                                 \
        {"description", O_STR, "description", 0, "The description of the object."},                \
        {"core_ids", O_LIST, "cores", 0, "The list of physical cores, based on their IDs."},       \
        {"network_ids", O_INT_LIST, "network_ids", 0,                                              \
         "The list of networks, based on their IDs."},                                             \
        {"datastores", O_LIST, "datastores", 0, "The list of datastores, based on their IDs."},    \
        {"cpu_overcommit", O_INT, "cpu_overcommit", 0,                                             \
         "The maximum number of vCPUs per pCPU: cpu_overcommit=2 lets each physical core run 2 "   \
         "virtual cores. (default: 1)"},                                                           \
        {"enable_cpu_pinning", O_FLAG, "is_cpu_pinning_enabled", 1,                                \
         "Enable CPU pinning for all the instances created for this group."},                      \
        {"disable_storage_latency_optimization", O_FLAG, "is_storage_latency_optimized", 0,        \
         "Do not prioritize MicroVisors with a local disk of the datastore for new instances."},   \
        {"enable_ft", O_FLAG, "fault_tolerance.is_enabled", 1, "Enable the fault tolerance."},     \
        {"ft_unit", O_STR, "fault_tolerance.unit", 0,                                              \
         "The fault tolerance unit: 'mvgroup', 'blade', 'chassis' or 'rack'."},                    \
        {"ft_max_failures", O_INT, "fault_tolerance.max_failures", 0,                              \
         "The number of units that are acceptable to fail. (default: 0)"},                         \
    {                                                                                              \
        "disable_ft_failover", O_FLAG, "fault_tolerance.automated_failover", 0,                    \
            "Disable the fault tolerance's automated failover."                                    \
    }

#define NET_COLS "id,name,virtual,cidr,dhcp_type,is_vlan,vlan_tag,resource_group_ids"
#define NET_OPTS                                                                                   \
    {"name", O_STR, "name", 0, "The display name of the object."},                                 \
        {"vnet_id", O_STR, "vnet_id", 0, "The network id in the hypervisor."},                     \
        {"cidr", O_STR, "cidr", 0, "The CIDR of the network."},                                    \
        {"ip_start", O_STR, "ip_start", 0, "The start of the IP range."},                          \
        {"ip_end", O_STR, "ip_end", 0, "The end of the IP range."},                                \
        {"gateway", O_STR, "gateway", 0, "The gateway of the network."},                           \
        {"dhcp_type", O_STR, "dhcp_type", 0, "'internal', 'static' or 'external'."},               \
        {"dhcp_server_ip", O_STR, "dhcp_server_ip", 0,                                             \
         "The DHCP server address (internal, routable networks)."},                                \
        {"nat_forwarding", O_FLAG, "nat_forwarding", 1,                                            \
         "Translate traffic to the external network (internal, routable networks)."},              \
        {"routable", O_FLAG, "is_routable", 1, "Enable a tunnel for the virtual network."},        \
        {"private", O_FLAG, "is_private", 1, "Mark the network private."},                         \
        {"wire_vlan", O_FLAG, "is_wire_vlan", 1, "Make the VLAN wired."},                          \
    {                                                                                              \
        "dedicated", O_FLAG, "is_dedicated", 1,                                                    \
            "A physical network not used as a path for virtual networks."                          \
    }

#define VOL_COLS  "id,name,size,status,datastore_id,instance_id,disks"
#define INST_COLS "id,name,state,task_state,node,vcpus,ram,resource_group_id,pin"
#define INST_ACTION(cmd, what)                                                                     \
    {                                                                                              \
        cmd, what, K_EDIT, "/api/instances/{id}/action", INST_COLS, NULL, "osd " cmd " --id=vm1",  \
        {                                                                                          \
            ID_OPT("instance")                                                                     \
        }                                                                                          \
    }

static const struct command commands[] = {
    {"get_datastores",
     "Get the list of datastores.",
     K_LIST,
     "/api/datastores",
     DS_COLS,
     NULL,
     "osd get_datastores",
     {{0}}},
    {"get_datastore",
     "Get one datastore.",
     K_GET,
     "/api/datastores/{id}",
     DS_COLS,
     NULL,
     "osd get_datastore --id=fjxi3vnzg4hm9y",
     {ID_OPT("datastore")}},
    {"create_datastore",
     "Create a new datastore.",
     K_CREATE,
     "/api/datastores",
     DS_COLS,
     NULL,
     "osd create_datastore --name=test --disks=3584916917,3283879690 --replicas=1 --thick=1",
     {{"name", O_STR, "name", 0, "The display name of the object."},
      {"disks", O_LIST, "disks", 0, "The list of storage disk's IDs."},
      {"replicas", O_INT, "replicas", 0, "The number of replicas we want for the volumes."},
      {"thick", O_NOT_BOOL, "is_thin", 0, "1 makes the datastore thick. (default: 0)"},
      DS_POLICY}},
    {"edit_datastore",
     "Edit a datastore.",
     K_EDIT,
     "/api/datastores/{id}",
     DS_COLS,
     NULL,
     "osd edit_datastore --id=fjxi3vnzg4hm9y --name=fast --overcommit=20",
     {ID_OPT("datastore"),
      {"name", O_STR, "name", 0, "The display name of the object."},
      {"state", O_STR, "state", 0, "'enabled' or 'disabled'."},
      DS_POLICY}},
    {"delete_datastore",
     "Delete a datastore.",
     K_DELETE,
     "/api/datastores/{id}",
     NULL,
     NULL,
     "osd delete_datastore --id=fjxi3vnzg4hm9y",
     {ID_OPT("datastore")}},
    {"add_datastore_disks",
     "Add disks to a datastore.",
     K_ADD,
     "/api/datastores/{id}/disks",
     DS_COLS,
     "disks",
     "osd add_datastore_disks --id=fjxi3vnzg4hm9y --disks=3584916918",
     {ID_OPT("datastore"), {"disks", O_LIST, "disks", 0, "The list of storage disk's IDs."}}},
    {"remove_datastore_disks",
     "Remove disks from a datastore.",
     K_REMOVE,
     "/api/datastores/{id}/disks",
     DS_COLS,
     "disks",
     "osd remove_datastore_disks --id=fjxi3vnzg4hm9y --disks=3584916918",
     {ID_OPT("datastore"), {"disks", O_LIST, "disks", 0, "The list of storage disk's IDs."}}},

    {"get_groups",
     "Get the list of resource groups.",
     K_LIST,
     "/api/resource_groups",
     RG_COLS,
     NULL,
     "osd get_groups",
     {{0}}},
    {"get_group",
     "Get one resource group.",
     K_GET,
     "/api/resource_groups/{id}",
     RG_COLS,
     NULL,
     "osd get_group --id=1",
     {ID_OPT("resource group")}},
    {"create_group",
     "Create a new resource group.",
     K_CREATE,
     "/api/resource_groups",
     RG_COLS,
     NULL,
     "osd create_group --name=super --core_ids=54424488_4,54424488_5 --network_ids=66,2 "
     "--datastores=fjxi3vnzg4hm9y",
     {RG_OPTS}},
    {"edit_group",
     "Edit a resource group.",
     K_EDIT,
     "/api/resource_groups/{id}",
     RG_COLS,
     NULL,
     "osd edit_group --id=1 --cpu_overcommit=4",
     {ID_OPT("resource group"),
      RG_OPTS,
      {"disable_cpu_pinning", O_FLAG, "is_cpu_pinning_enabled", 0, "Disable CPU pinning."},
      {"enable_storage_latency_optimization", O_FLAG, "is_storage_latency_optimized", 1,
       "Prioritize MicroVisors with a local disk of the datastore."},
      {"disable_ft", O_FLAG, "fault_tolerance.is_enabled", 0, "Disable the fault tolerance."},
      {"enable_ft_failover", O_FLAG, "fault_tolerance.automated_failover", 1,
       "Enable the automated failover."}}},
    {"delete_group",
     "Delete a resource group.",
     K_DELETE,
     "/api/resource_groups/{id}",
     NULL,
     NULL,
     "osd delete_group --id=1",
     {ID_OPT("resource group")}},
    {"add_group_cores",
     "Add cores to a resource group.",
     K_ADD,
     "/api/resource_groups/{id}/cores",
     RG_COLS,
     "core_ids",
     "osd add_group_cores --id=1 --core_ids=54424488_6",
     {ID_OPT("resource group"), {"core_ids", O_LIST, "cores", 0, "The core ids."}}},
    {"remove_group_cores",
     "Remove cores from a resource group.",
     K_REMOVE,
     "/api/resource_groups/{id}/cores",
     RG_COLS,
     "core_ids",
     "osd remove_group_cores --id=1 --core_ids=54424488_6",
     {ID_OPT("resource group"), {"core_ids", O_LIST, "cores", 0, "The core ids."}}},
    {"add_group_datastores",
     "Add datastores to a resource group.",
     K_ADD,
     "/api/resource_groups/{id}/datastores",
     RG_COLS,
     "datastores",
     "osd add_group_datastores --id=1 --datastores=fjxi3vnzg4hm9y",
     {ID_OPT("resource group"), {"datastores", O_LIST, "datastores", 0, "The datastore ids."}}},
    {"remove_group_datastores",
     "Remove datastores from a resource group.",
     K_REMOVE,
     "/api/resource_groups/{id}/datastores",
     RG_COLS,
     "datastores",
     "osd remove_group_datastores --id=1 --datastores=fjxi3vnzg4hm9y",
     {ID_OPT("resource group"), {"datastores", O_LIST, "datastores", 0, "The datastore ids."}}},
    {"add_group_networks",
     "Add networks to a resource group.",
     K_ADD,
     "/api/resource_groups/{id}/networks",
     RG_COLS,
     "network_ids",
     "osd add_group_networks --id=1 --network_ids=3",
     {ID_OPT("resource group"), {"network_ids", O_INT_LIST, "network_ids", 0, "The network ids."}}},
    {"remove_group_networks",
     "Remove networks from a resource group.",
     K_REMOVE,
     "/api/resource_groups/{id}/networks",
     RG_COLS,
     "network_ids",
     "osd remove_group_networks --id=1 --network_ids=3",
     {ID_OPT("resource group"), {"network_ids", O_INT_LIST, "network_ids", 0, "The network ids."}}},

    {"get_networks",
     "Get the list of networks.",
     K_LIST,
     "/api/networks",
     NET_COLS,
     NULL,
     "osd get_networks",
     {{0}}},
    {"get_network",
     "Get one network.",
     K_GET,
     "/api/networks/{id}",
     NET_COLS,
     NULL,
     "osd get_network --id=2",
     {ID_OPT("network")}},
    {"create_network",
     "Create a new network.",
     K_CREATE,
     "/api/networks",
     NET_COLS,
     NULL,
     "osd create_network --name=public --cidr=10.0.0.0/24 --dhcp_type=static "
     "--ip_start=10.0.0.10 --ip_end=10.0.0.200 --gateway=10.0.0.1",
     {NET_OPTS,
      {"virtual", O_BOOL, "virtual", 0, "Whether the network is virtual. (default: true)"},
      {"ip_version", O_INT, "ip_version", 0, "4 or 6. (default: 4)"},
      {"vlan", O_FLAG, "is_vlan", 1, "Make the network a VLAN (needs --vlan_tag)."},
      {"vlan_tag", O_INT, "vlan_tag", 0, "The VLAN tag, 1-4094."},
      {"mac", O_STR, "mac", 0, "The MAC of the physical port (physical networks)."}}},
    {"edit_network",
     "Edit a network.",
     K_EDIT,
     "/api/networks/{id}",
     NET_COLS,
     NULL,
     "osd edit_network --id=2 --name=public2",
     {ID_OPT("network"), NET_OPTS, {"vlan_tag", O_INT, "vlan_tag", 0, "The VLAN tag, 1-4094."}}},
    {"delete_network",
     "Delete a network.",
     K_DELETE,
     "/api/networks/{id}",
     NULL,
     NULL,
     "osd delete_network --id=2",
     {ID_OPT("network")}},

    {"get_nodes",
     "Get the list of nodes (MicroVisors).",
     K_LIST,
     "/api/nodes",
     "id,hostname,mac,state,labels.rack,labels.chassis,labels.blade,core_count,disk_count,"
     "memory_mb",
     NULL,
     "osd get_nodes",
     {{0}}},
    {"get_node",
     "Get one node.",
     K_GET,
     "/api/nodes/{id}",
     "id,hostname,mac,state,source,labels,memory_mb,free_memory_mb,core_count,disk_count",
     NULL,
     "osd get_node --id=54424488",
     {ID_OPT("node")}},
    {"get_numa",
     "Get the NUMA topology of a node.",
     K_LIST,
     "/api/nodes/{id}/numa",
     "id,memory_mb,free_memory_mb,cores",
     NULL,
     "osd get_numa --id=54424488",
     {ID_OPT("node")}},
    {"delete_node",
     "Forget an offline node that nothing uses.",
     K_DELETE,
     "/api/nodes/{id}",
     NULL,
     NULL,
     "osd delete_node --id=54424488",
     {ID_OPT("node")}},
    {"get_cores",
     "Get the list of physical cores.",
     K_LIST,
     "/api/cores",
     "id,node_id,cpu,core_id,socket_id,numa_node,resource_group_id",
     NULL,
     "osd get_cores --node_id=54424488 --free=true",
     {{"node_id", O_QUERY, "node_id", 0, "Only the cores of this node."},
      {"free", O_QUERY, "free", 0,
       "true: only cores of no resource group; false: only assigned."}}},
    {"get_core",
     "Get one core.",
     K_GET,
     "/api/cores/{id}",
     "id,node_id,cpu,core_id,socket_id,numa_node,resource_group_id",
     NULL,
     "osd get_core --id=54424488_4",
     {ID_OPT("core")}},
    {"get_disks",
     "Get the list of physical disks.",
     K_LIST,
     "/api/disks",
     "id,node_id,total,vendor,model,datastore,state,is_up",
     NULL,
     "osd get_disks --free=true",
     {{"node_id", O_QUERY, "node_id", 0, "Only the disks of this node."},
      {"free", O_QUERY, "free", 0, "true: only disks of no datastore; false: only assigned."}}},
    {"get_volumes",
     "Get the list of volumes.",
     K_LIST,
     "/api/volumes",
     VOL_COLS,
     NULL,
     "osd get_volumes",
     {{0}}},
    {"get_volume",
     "Get one volume (by id or name).",
     K_GET,
     "/api/volumes/{id}",
     VOL_COLS ",vdisk_id,shelf,slot,replicas",
     NULL,
     "osd get_volume --id=root1",
     {ID_OPT("volume")}},
    {"create_volume",
     "Create a new empty volume on a datastore's drives.",
     K_CREATE,
     "/api/volumes",
     VOL_COLS,
     NULL,
     "osd create_volume --name=root1 --size=1 --datastore_id=fjxi3vnzg4hm9y",
     {{"name", O_STR, "name", 0, "The display name of the volume."},
      {"size", O_INT, "size", 0, "The size of the volume in GB."},
      {"datastore_id", O_STR, "datastore_id", 0, "The datastore holding its replicas."}}},
    {"edit_volume",
     "Rename or grow a volume.",
     K_EDIT,
     "/api/volumes/{id}",
     VOL_COLS,
     NULL,
     "osd edit_volume --id=root1 --size=2",
     {ID_OPT("volume"),
      {"name", O_STR, "name", 0, "The new name."},
      {"size", O_INT, "size", 0, "The new size in GB (volumes only grow)."}}},
    {"clone_volume",
     "Create a new volume based on a volume.",
     K_EDIT,
     "/api/volumes/{id}/clone",
     VOL_COLS,
     NULL,
     "osd clone_volume --id=root1 --name=root2",
     {ID_OPT("volume"),
      {"name", O_STR, "name", 0, "The name of the new volume."},
      {"size", O_INT, "size", 0, "Its size in GB (at least the source's)."}}},
    {"delete_volume",
     "Delete a volume that no instance uses.",
     K_DELETE,
     "/api/volumes/{id}",
     NULL,
     NULL,
     "osd delete_volume --id=root1",
     {ID_OPT("volume")}},
    {"get_instances",
     "Get the list of instances.",
     K_LIST,
     "/api/instances",
     INST_COLS,
     NULL,
     "osd get_instances",
     {{0}}},
    {"get_instance",
     "Get one instance (by id or name).",
     K_GET,
     "/api/instances/{id}",
     INST_COLS ",uuid,cpuset,vnuma,volumes.name,networks.mac,error",
     NULL,
     "osd get_instance --id=vm1",
     {ID_OPT("instance")}},
    {"get_instance_info",
     "Get the state and hardware information the instance's VMM reports.",
     K_GET,
     "/api/instances/{id}/info",
     "state,state_name,num_cpu,max_mem_kb,mem_kb,cpu_time_ns,pid,node",
     NULL,
     "osd get_instance_info --id=vm1",
     {ID_OPT("instance")}},
    {"create_instance",
     "Create an instance in a resource group and start it.",
     K_CREATE,
     "/api/instances",
     INST_COLS,
     NULL,
     "osd create_instance --name=vm1 --resource_group_id=1 --vcpus=2 --ram=64 "
     "--payload=/var/lib/mvkvm/guest.elf --volumes=root1 --network_ids=1",
     {{"name", O_STR, "name", 0, "The display name of the instance."},
      {"hostname", O_STR, "hostname", 0, "Its host name."},
      {"resource_group_id", O_INT, "resource_group_id", 0, "The resource group it runs in."},
      {"vcpus", O_INT, "vcpus", 0, "The number of virtual cores."},
      {"ram", O_INT, "ram", 0, "The memory in MB."},
      {"payload", O_STR, "payload", 0, "Boot image: a bare-metal payload (ELF) on the hosts."},
      {"kernel", O_STR, "kernel", 0, "Boot image: a Linux kernel on the hosts."},
      {"initrd", O_STR, "initrd", 0, "The initial ramdisk (with --kernel)."},
      {"cmdline", O_STR, "cmdline", 0, "The kernel command line (with --kernel)."},
      {"node_id", O_STR, "node_id", 0, "Run it on this node (default: placement chooses)."},
      {"volumes", O_OBJ_LIST, "volumes.name", 0,
       "Volumes to attach, by name; the first is the root disk."},
      {"network_ids", O_OBJ_INT_LIST, "networks.network_id", 0,
       "Networks of its interfaces, one interface each."},
      {"start", O_BOOL, "start", 0, "Start it once created. (default: true)"}}},
    {"delete_instance",
     "Delete an instance (stops it first).",
     K_DELETE,
     "/api/instances/{id}",
     NULL,
     NULL,
     "osd delete_instance --id=vm1",
     {ID_OPT("instance")}},
    INST_ACTION("start_instance", "Start an instance."),
    INST_ACTION("stop_instance", "Stop an instance."),
    INST_ACTION("reboot_instance", "Reboot an instance."),
    INST_ACTION("pause_instance", "Pause an instance."),
    INST_ACTION("unpause_instance", "Unpause an instance."),
    {"migrate_instance",
     "Cold-migrate an instance: stop it, move it, optionally restart it on the target.",
     K_EDIT,
     "/api/instances/{id}/action",
     INST_COLS,
     NULL,
     "osd migrate_instance --id=vm1 --node_id=54424488 --restart_after=true",
     {ID_OPT("instance"),
      {"node_id", O_STR, "node_id", 0, "The target node."},
      {"restart_after", O_BOOL, "restart_after", 0, "Start it on the target. (default: false)"}}},
    {"get_disk",
     "Get one disk.",
     K_GET,
     "/api/disks/{id}",
     "id,node_id,total,vendor,model,serial_number,datastore,state,is_up",
     NULL,
     "osd get_disk --id=3584916917",
     {ID_OPT("disk")}},
};

static const char *const common_help =
    "  --json                 Return the output as json.\n"
    "  --filter value         Filter the values you want to see from the output:\n"
    "                         field names, comma-separated (dots reach nested fields).\n";
static const char *const list_help =
    "  --if value             Show only objects where the condition holds (repeatable):\n"
    "                         FIELD (true, non-empty), FIELD=VALUE or FIELD!=VALUE.\n"
    "  --if-not value         Don't show objects where the condition holds (repeatable).\n";

static void command_help(const struct command *c, FILE *out)
{
    fprintf(out,
            "COMMAND:\n   %s\n\nNAME:\n   %s - %s\n\nUSAGE:\n   osd %s [command options]\n\n"
            "EXAMPLE:\n   %s\n\nOPTIONS:\n",
            c->name, c->name, c->summary, c->name, c->example);
    fputs(common_help, out);
    if (c->kind == K_LIST)
        fputs(list_help, out);
    for (int i = 0; i < MAX_OPTS && c->opts[i].name; i++) {
        const struct opt *o = &c->opts[i];
        char left[64];
        snprintf(left, sizeof left, "--%s%s", o->name, o->type == O_FLAG ? "" : " value");
        fprintf(out, "  %-22s %s\n", left, o->help);
    }
}

static void usage(FILE *out)
{
    fprintf(out, "Usage: osd COMMAND [command options]\n"
                 "The command-line client of the mvkvm controller (mvctld).\n\n"
                 "Server and credentials: OSD_URL, OSD_USER, OSD_PASSWORD, or url=, user=,\n"
                 "password= (and cacert=, insecure=) in section [osd] of ~/.config/osd.conf or\n"
                 "/etc/mvkvm/osd.conf.\n\nCOMMANDS:\n");
    for (size_t i = 0; i < MV_ARRAY_SIZE(commands); i++)
        fprintf(out, "   %-26s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'osd COMMAND --help' for the options of a command.\n");
}

/* ------------------------------------------------------------------ configuration */

struct osd_conf {
    char url[512], user[128], password[256], cacert[512];
    bool insecure;
};

static int conf_entry(void *user, const char *section, const char *key, const char *value,
                      char *err, size_t errlen)
{
    struct osd_conf *c = user;
    if (strcmp(section, "osd") != 0) {
        snprintf(err, errlen, "unknown section [%s] (expected [osd])", section);
        return -1;
    }
    if (strcmp(key, "url") == 0)
        snprintf(c->url, sizeof c->url, "%s", value);
    else if (strcmp(key, "user") == 0)
        snprintf(c->user, sizeof c->user, "%s", value);
    else if (strcmp(key, "password") == 0)
        snprintf(c->password, sizeof c->password, "%s", value);
    else if (strcmp(key, "cacert") == 0)
        snprintf(c->cacert, sizeof c->cacert, "%s", value);
    else if (strcmp(key, "insecure") == 0) {
        if (mv_parse_bool(value, &c->insecure) != 0) {
            snprintf(err, errlen, "insecure must be true or false");
            return -1;
        }
    } else {
        snprintf(err, errlen, "unknown key '%s'", key);
        return -1;
    }
    return 0;
}

static int load_conf(struct osd_conf *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->url, sizeof c->url, "http://127.0.0.1:8080");
    snprintf(c->user, sizeof c->user, "admin");
    char path[600], err[700];
    const char *home = getenv("HOME");
    const char *file = NULL;
    if (home) {
        snprintf(path, sizeof path, "%s/.config/osd.conf", home);
        if (access(path, F_OK) == 0)
            file = path;
    }
    if (!file && access("/etc/mvkvm/osd.conf", F_OK) == 0)
        file = "/etc/mvkvm/osd.conf";
    if (file && mv_config_load(file, conf_entry, c, err, sizeof err) != 0) {
        fprintf(stderr, "osd: %s\n", err);
        return -1;
    }
    const char *v;
    if ((v = getenv("OSD_URL")) && *v)
        snprintf(c->url, sizeof c->url, "%s", v);
    if ((v = getenv("OSD_USER")) && *v)
        snprintf(c->user, sizeof c->user, "%s", v);
    if ((v = getenv("OSD_PASSWORD")))
        snprintf(c->password, sizeof c->password, "%s", v);
    size_t n = strlen(c->url);
    while (n > 0 && c->url[n - 1] == '/')
        c->url[--n] = 0;
    return 0;
}

/* ------------------------------------------------------------------ HTTP */

struct buf {
    char *data;
    size_t len;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *user)
{
    struct buf *b = user;
    size_t n = size * nmemb;
    char *nd = realloc(b->data, b->len + n + 1);
    if (!nd)
        return 0;
    b->data = nd;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

/* Performs the request; returns the HTTP status (0 on transport failure) and the parsed body. */
static long http(const struct osd_conf *conf, const char *method, const char *path,
                 const json_t *body, json_t **out)
{
    CURL *curl = curl_easy_init();
    struct buf resp = {0};
    char url[2048];
    snprintf(url, sizeof url, "%s%s", conf->url, path);
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Accept: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_USERNAME, conf->user);
    curl_easy_setopt(curl, CURLOPT_PASSWORD, conf->password);
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    if (conf->cacert[0])
        curl_easy_setopt(curl, CURLOPT_CAINFO, conf->cacert);
    if (conf->insecure) {
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (payload)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
    long status = 0;
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK)
        fprintf(stderr, "osd: %s: %s\n", url, curl_easy_strerror(rc));
    else
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    *out = NULL;
    if (resp.len) {
        *out = json_loadb(resp.data, resp.len, JSON_DECODE_ANY, NULL);
        if (!*out)
            *out = json_stringn(resp.data, resp.len);
    }
    free(resp.data);
    free(payload);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    return status;
}

static void print_error(long status, const json_t *body)
{
    const char *msg = json_string_value(json_object_get(body, "message"));
    if (!msg)
        msg = json_string_value(body);
    fprintf(stderr, "osd: error %ld: %s\n", status, msg ? msg : "(no message)");
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(body, "errors"), i, e)
    {
        const char *detail = json_string_value(json_object_get(e, "detail"));
        fprintf(stderr, "  %s: %s [%lld]%s%s\n", json_string_value(json_object_get(e, "field")),
                json_string_value(json_object_get(e, "message")),
                (long long)json_integer_value(json_object_get(e, "code")), detail ? " " : "",
                detail ? detail : "");
    }
}

/* ------------------------------------------------------------------ arguments */

static int set_path(json_t *body, const char *path, json_t *value)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    char *dot = strchr(buf, '.');
    if (dot) {
        *dot = 0;
        json_t *sub = json_object_get(body, buf);
        if (!sub) {
            sub = json_object();
            json_object_set_new(body, buf, sub);
        }
        return json_object_set_new(sub, dot + 1, value);
    }
    return json_object_set_new(body, buf, value);
}

static json_t *parse_value(const struct opt *o, const char *v, char *err, size_t errlen)
{
    int64_t n;
    bool b;
    switch (o->type) {
    case O_STR:
        return json_string(v);
    case O_INT:
        if (sscanf(v, "%" SCNd64, &n) != 1 || strspn(v, "-0123456789") != strlen(v)) {
            snprintf(err, errlen, "--%s: '%s' is not an integer", o->name, v);
            return NULL;
        }
        return json_integer(n);
    case O_FLAG:
        if (!v)
            return json_boolean(o->flag_value);
        if (mv_parse_bool(v, &b) != 0) {
            snprintf(err, errlen, "--%s: '%s' is not true or false", o->name, v);
            return NULL;
        }
        return json_boolean(b ? o->flag_value : !o->flag_value);
    case O_BOOL:
    case O_NOT_BOOL:
        if (mv_parse_bool(v, &b) != 0) {
            snprintf(err, errlen, "--%s: '%s' is not true/false or 1/0", o->name, v);
            return NULL;
        }
        return json_boolean(o->type == O_NOT_BOOL ? !b : b);
    case O_LIST:
    case O_INT_LIST: {
        json_t *a = json_array();
        char *copy = strdup(v), *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (o->type == O_LIST) {
                json_array_append_new(a, json_string(tok));
            } else if (sscanf(tok, "%" SCNd64, &n) == 1 &&
                       strspn(tok, "-0123456789") == strlen(tok)) {
                json_array_append_new(a, json_integer(n));
            } else {
                snprintf(err, errlen, "--%s: '%s' is not an integer id", o->name, tok);
                json_decref(a);
                free(copy);
                return NULL;
            }
        }
        free(copy);
        return a;
    }
    case O_OBJ_LIST:
    case O_OBJ_INT_LIST: {
        const char *key = strchr(o->field, '.') + 1;
        json_t *a = json_array();
        char *copy = strdup(v), *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (o->type == O_OBJ_LIST) {
                json_array_append_new(a, json_pack("{s:s}", key, tok));
            } else if (sscanf(tok, "%" SCNd64, &n) == 1 &&
                       strspn(tok, "-0123456789") == strlen(tok)) {
                json_array_append_new(a, json_pack("{s:I}", key, (json_int_t)n));
            } else {
                snprintf(err, errlen, "--%s: '%s' is not an integer id", o->name, tok);
                json_decref(a);
                free(copy);
                return NULL;
            }
        }
        free(copy);
        return a;
    }
    default:
        return json_string(v);
    }
}

struct invocation {
    bool json, help;
    struct osd_fields fields;
    bool has_fields;
    struct osd_cond conds[16];
    bool cond_negated[16];
    int nconds;
    char *id;
    char query[512];
    json_t *body;
};

static int parse_args(const struct command *c, int argc, char **argv, struct invocation *inv)
{
    char err[300];
    inv->body = json_object();
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "osd %s: unexpected argument '%s'\n", c->name, arg);
            return -1;
        }
        char name[64];
        const char *eq = strchr(arg + 2, '=');
        size_t nlen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        if (nlen >= sizeof name) {
            fprintf(stderr, "osd %s: unknown option '%s'\n", c->name, arg);
            return -1;
        }
        memcpy(name, arg + 2, nlen);
        name[nlen] = 0;
        const char *value = eq ? eq + 1 : NULL;
        if (strcmp(name, "json") == 0) {
            inv->json = true;
            continue;
        }
        if (strcmp(name, "help") == 0) {
            inv->help = true;
            continue;
        }
        const struct opt *o = NULL;
        for (int k = 0; k < MAX_OPTS && c->opts[k].name; k++) {
            if (strcmp(c->opts[k].name, name) == 0)
                o = &c->opts[k];
        }
        bool is_cond = c->kind == K_LIST && (!strcmp(name, "if") || !strcmp(name, "if-not"));
        if (!o && !is_cond && strcmp(name, "filter") != 0) {
            fprintf(stderr, "osd %s: unknown option '--%s' (see osd %s --help)\n", c->name, name,
                    c->name);
            return -1;
        }
        if (!value && !(o && o->type == O_FLAG)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "osd %s: --%s needs a value\n", c->name, name);
                return -1;
            }
            value = argv[++i];
        }
        if (strcmp(name, "filter") == 0) {
            if (osd_fields_parse(value, &inv->fields, err, sizeof err) != 0) {
                fprintf(stderr, "osd %s: %s\n", c->name, err);
                return -1;
            }
            inv->has_fields = true;
        } else if (is_cond) {
            if (inv->nconds == (int)MV_ARRAY_SIZE(inv->conds) ||
                osd_cond_parse(value, &inv->conds[inv->nconds], err, sizeof err) != 0) {
                fprintf(stderr, "osd %s: --%s: %s\n", c->name, name,
                        inv->nconds == 16 ? "too many conditions" : err);
                return -1;
            }
            inv->cond_negated[inv->nconds++] = name[2] == '-';
        } else if (o->type == O_ID) {
            inv->id = curl_easy_escape(NULL, value, 0);
        } else if (o->type == O_QUERY) {
            char *esc = curl_easy_escape(NULL, value, 0);
            size_t len = strlen(inv->query);
            snprintf(inv->query + len, sizeof inv->query - len, "%c%s=%s", len ? '&' : '?',
                     o->field, esc);
            curl_free(esc);
        } else {
            json_t *v = parse_value(o, value, err, sizeof err);
            if (!v) {
                fprintf(stderr, "osd %s: %s\n", c->name, err);
                return -1;
            }
            if (o->type == O_OBJ_LIST || o->type == O_OBJ_INT_LIST) {
                char top[64];
                snprintf(top, sizeof top, "%.*s", (int)(strchr(o->field, '.') - o->field),
                         o->field);
                json_object_set_new(inv->body, top, v);
            } else {
                set_path(inv->body, o->field, v);
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ output */

static bool keep(const struct invocation *inv, const json_t *obj)
{
    for (int i = 0; i < inv->nconds; i++) {
        if (osd_cond_eval(&inv->conds[i], obj) == inv->cond_negated[i])
            return false;
    }
    return true;
}

static void print_result(const struct command *c, const struct invocation *inv, json_t *result)
{
    struct osd_fields cols;
    char err[200];
    if (inv->has_fields)
        cols = inv->fields;
    else if (c->columns)
        osd_fields_parse(c->columns, &cols, err, sizeof err);
    bool list = json_is_array(result);
    json_t *rows = json_array();
    if (list) {
        size_t i;
        json_t *v;
        json_array_foreach(result, i, v)
        {
            if (keep(inv, v))
                json_array_append(rows, v);
        }
    } else {
        json_array_append(rows, result);
    }
    if (inv->json) {
        json_t *out = rows;
        if (inv->has_fields) {
            out = json_array();
            size_t i;
            json_t *v;
            json_array_foreach(rows, i, v)
            {
                json_array_append_new(out, osd_project(v, &inv->fields));
            }
        }
        json_t *shown = list ? out : json_array_get(out, 0);
        char *text = json_dumps(shown, JSON_INDENT(2) | JSON_ENCODE_ANY);
        printf("%s\n", text);
        free(text);
        if (out != rows)
            json_decref(out);
    } else if (list || inv->has_fields || c->columns) {
        char *t = osd_table(rows, &cols);
        fputs(t, stdout);
        free(t);
    }
    json_decref(rows);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("osd %s\n", MV_VERSION);
        return 0;
    }
    const struct command *c = NULL;
    for (size_t i = 0; i < MV_ARRAY_SIZE(commands); i++) {
        if (strcmp(commands[i].name, argv[1]) == 0)
            c = &commands[i];
    }
    if (!c) {
        fprintf(stderr, "osd: unknown command '%s' (see osd --help)\n", argv[1]);
        return 2;
    }
    struct invocation inv = {0};
    if (parse_args(c, argc - 2, argv + 2, &inv) != 0) {
        json_decref(inv.body);
        curl_free(inv.id);
        return 2;
    }
    if (inv.help) {
        command_help(c, stdout);
        json_decref(inv.body);
        curl_free(inv.id);
        return 0;
    }
    const char *hole = strstr(c->path, "{id}");
    bool needs_id = hole != NULL;
    if (needs_id && !inv.id) {
        fprintf(stderr, "osd %s: --id is required\n", c->name);
        json_decref(inv.body);
        return 2;
    }
    struct osd_conf conf;
    if (load_conf(&conf) != 0)
        return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char path[1024];
    if (hole)
        snprintf(path, sizeof path, "%.*s%s%s", (int)(hole - c->path), c->path, inv.id, hole + 4);
    else
        snprintf(path, sizeof path, "%s", c->path);
    int rc = 0;
    json_t *result = NULL;
    long status = 0;
    if (c->kind == K_CREATE && !strcmp(c->name, "create_group") &&
        !json_object_get(inv.body, "cpu_overcommit"))
        json_object_set_new(inv.body, "cpu_overcommit", json_integer(1));
    if (action_of(c->name))
        json_object_set_new(inv.body, "action", json_string(action_of(c->name)));
    switch (c->kind) {
    case K_LIST:
    case K_GET:
        strncat(path, inv.query, sizeof path - strlen(path) - 1);
        status = http(&conf, "GET", path, NULL, &result);
        break;
    case K_CREATE:
        status = http(&conf, "POST", path, inv.body, &result);
        break;
    case K_EDIT:
        status = http(&conf, "PUT", path, inv.body, &result);
        break;
    case K_DELETE:
        status = http(&conf, "DELETE", path, NULL, &result);
        break;
    case K_ADD:
        status = http(&conf, "POST", path, inv.body, &result);
        break;
    case K_REMOVE: {
        /* One DELETE per member; stop at the first failure. */
        const struct opt *o = &c->opts[1];
        json_t *ids = json_object_get(inv.body, o->field);
        status = 0;
        if (json_array_size(ids) == 0) {
            fprintf(stderr, "osd %s: --%s is required\n", c->name, o->name);
            rc = 2;
            break;
        }
        size_t i;
        json_t *v;
        json_array_foreach(ids, i, v)
        {
            char *s = osd_render_value(v);
            char *esc = curl_easy_escape(NULL, s, 0);
            char sub[1400];
            snprintf(sub, sizeof sub, "%s/%s", path, esc);
            curl_free(esc);
            free(s);
            json_decref(result);
            status = http(&conf, "DELETE", sub, NULL, &result);
            if (status < 200 || status >= 300)
                break;
        }
        break;
    }
    }
    if (rc == 0) {
        if (status == 0) {
            rc = 1;
        } else if (status < 200 || status >= 300) {
            print_error(status, result);
            rc = 1;
        } else if (result) {
            print_result(c, &inv, result);
        } else if (!inv.json) {
            printf("%s: done\n", c->name);
        }
    }
    json_decref(result);
    json_decref(inv.body);
    curl_free(inv.id);
    curl_global_cleanup();
    return rc;
}
