/* Bridges, VLAN subinterfaces and TAPs for VM NICs, through iproute2. */
#include "mv/vm_net.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mv/log.h"
#include "mv/vm_args.h"

extern char **environ;

int mv_vm_run_cmd(char *const argv[], char *err, size_t errlen)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return snprintf(err, errlen, "pipe: %s", strerror(errno)), -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        return snprintf(err, errlen, "%s: %s", argv[0], strerror(rc)), -1;
    }
    char out[512];
    size_t n = 0;
    ssize_t r;
    while ((r = read(pfd[0], out + n, sizeof out - 1 - n)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0 && (n += (size_t)r) == sizeof out - 1)
            break;
    out[n] = 0;
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    out[strcspn(out, "\n")] = 0;
    char cmd[256] = "";
    for (size_t i = 0, off = 0; argv[i] && off < sizeof cmd - 1; i++)
        off += (size_t)snprintf(cmd + off, sizeof cmd - off, "%s%s", i ? " " : "", argv[i]);
    snprintf(err, errlen, "'%s' failed: %s", cmd, out[0] ? out : "(no message)");
    return -1;
}

static int if_exists(const char *name)
{
    char p[128];
    snprintf(p, sizeof p, "/sys/class/net/%s", name);
    return access(p, F_OK) == 0;
}

/* The bridge an interface is enslaved to, "" if none. */
static void if_master(const char *name, char *out, size_t cap)
{
    char p[128], link[256];
    snprintf(p, sizeof p, "/sys/class/net/%s/master", name);
    ssize_t n = readlink(p, link, sizeof link - 1);
    out[0] = 0;
    if (n <= 0)
        return;
    link[n] = 0;
    const char *base = strrchr(link, '/');
    base = base ? base + 1 : link;
    if (strlen(base) < cap)
        memcpy(out, base, strlen(base) + 1);
}

#define IP(...) mv_vm_run_cmd((char *const[]){"ip", __VA_ARGS__, NULL}, err, errlen)

static int bridge_up(const char *uplink, uint64_t net, unsigned vlan, char *br, size_t brcap,
                     char *err, size_t errlen)
{
    if (mv_vm_bridge_name(net, br, brcap) != 0)
        return snprintf(err, errlen, "network %llu: no bridge name", (unsigned long long)net), -1;
    if (!if_exists(br) && IP("link", "add", "name", br, "type", "bridge") != 0 && !if_exists(br))
        return -1;
    if (IP("link", "set", br, "up") != 0)
        return -1;
    char port[32], vs[16], master[32];
    if (vlan) {
        if (mv_vm_vlan_ifname(uplink, vlan, port, sizeof port) != 0)
            return snprintf(err, errlen, "VLAN %u on %s: no name", vlan, uplink), -1;
        snprintf(vs, sizeof vs, "%u", vlan);
        if (!if_exists(port) &&
            IP("link", "add", "link", (char *)uplink, "name", port, "type", "vlan", "id", vs) !=
                0 &&
            !if_exists(port)) {
            if (strstr(err, "Unknown device type")) /* kernels built without 8021q */
                snprintf(err, errlen, "VLAN %u: this kernel has no 802.1Q VLAN support", vlan);
            return -1;
        }
    } else {
        snprintf(port, sizeof port, "%s", uplink);
    }
    if_master(port, master, sizeof master);
    if (strcmp(master, br) != 0) {
        if (master[0])
            return snprintf(err, errlen, "%s is already a port of %s", port, master), -1;
        if (IP("link", "set", port, "master", br) != 0)
            return -1;
    }
    return IP("link", "set", port, "up");
}

int mv_vm_net_up(const char *uplink, const char *uuid, json_t *nics, char *err, size_t errlen)
{
    size_t i;
    json_t *nic;
    json_array_foreach(nics, i, nic)
    {
        uint64_t net = (uint64_t)json_integer_value(json_object_get(nic, "network_id"));
        unsigned vlan = (unsigned)json_integer_value(json_object_get(nic, "vlan"));
        char br[32], tap[32];
        if (!uplink || !uplink[0]) {
            snprintf(err, errlen, "no uplink interface for VM networks");
            goto fail;
        }
        if (bridge_up(uplink, net, vlan, br, sizeof br, err, errlen) != 0)
            goto fail;
        if (mv_vm_tap_name(uuid, (unsigned)i, tap, sizeof tap) != 0) {
            snprintf(err, errlen, "nic %zu: no TAP name", i);
            goto fail;
        }
        /* vnet_hdr: mvvmm attaches with IFF_VNET_HDR. */
        if (!if_exists(tap) && IP("tuntap", "add", "dev", tap, "mode", "tap", "vnet_hdr") != 0 &&
            !if_exists(tap))
            goto fail;
        if (IP("link", "set", tap, "master", br) != 0 || IP("link", "set", tap, "up") != 0)
            goto fail;
    }
    return 0;
fail:
    mv_vm_net_down(uplink, uuid, nics);
    return -EIO;
}

/* Interfaces enslaved to br other than skip. */
static int bridge_ports_except(const char *br, const char *skip)
{
    char p[128];
    snprintf(p, sizeof p, "/sys/class/net/%s/brif", br);
    DIR *d = opendir(p);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && strcmp(de->d_name, skip) != 0)
            n++;
    closedir(d);
    return n;
}

void mv_vm_net_down(const char *uplink, const char *uuid, json_t *nics)
{
    char err[256];
    size_t errlen = sizeof err;
    size_t i;
    json_t *nic;
    json_array_foreach(nics, i, nic)
    {
        char tap[32];
        if (mv_vm_tap_name(uuid, (unsigned)i, tap, sizeof tap) == 0 && if_exists(tap) &&
            IP("link", "del", tap) != 0)
            mv_warn("%s", err);
    }
    json_array_foreach(nics, i, nic)
    {
        uint64_t net = (uint64_t)json_integer_value(json_object_get(nic, "network_id"));
        unsigned vlan = (unsigned)json_integer_value(json_object_get(nic, "vlan"));
        char br[32], port[32];
        if (mv_vm_bridge_name(net, br, sizeof br) != 0 || !if_exists(br) || !uplink || !uplink[0])
            continue;
        if (vlan)
            mv_vm_vlan_ifname(uplink, vlan, port, sizeof port);
        else
            snprintf(port, sizeof port, "%s", uplink);
        if (bridge_ports_except(br, port) > 0)
            continue; /* another VM's TAP is still on this network */
        if (vlan && if_exists(port) && IP("link", "del", port) != 0)
            mv_warn("%s", err);
        if (!vlan && IP("link", "set", port, "nomaster") != 0)
            mv_warn("%s", err);
        if (IP("link", "del", br) != 0)
            mv_warn("%s", err);
    }
}
