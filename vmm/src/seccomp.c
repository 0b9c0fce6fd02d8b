/* Syscall allowlist installed after setup (classic BPF, no libseccomp): what the vCPU, I/O,
 * console and main threads need to run, reset and stop a VM. Anything else kills the process,
 * so a compromised device model cannot open files or sockets or exec. */
#include "vm_internal.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mv/log.h"
#include "mv/util.h"

#include <grp.h>
#include <pwd.h>

static const int allowed_syscalls[] = {
    SYS_read,
    SYS_write,
    SYS_readv,
    SYS_writev,
    SYS_pread64,
    SYS_pwrite64,
    SYS_preadv,
    SYS_pwritev,
    SYS_close,
    SYS_ioctl,
    SYS_poll,
    SYS_ppoll,
    SYS_epoll_wait,
    SYS_epoll_pwait,
    SYS_epoll_ctl,
    SYS_futex,
    SYS_nanosleep,
    SYS_clock_nanosleep,
    SYS_clock_gettime,
    SYS_gettimeofday,
    SYS_mmap,
    SYS_munmap,
    SYS_mprotect,
    SYS_madvise,
    SYS_brk,
    SYS_mremap,
    SYS_rt_sigreturn,
    SYS_rt_sigprocmask,
    SYS_rt_sigaction,
    SYS_sigaltstack,
    SYS_tgkill,
    SYS_gettid,
    SYS_getpid,
    SYS_exit,
    SYS_exit_group,
    SYS_sched_yield,
    SYS_restart_syscall,
    SYS_accept4,
    SYS_accept,
    SYS_recvfrom,
    SYS_sendto,
    SYS_recvmsg,
    SYS_sendmsg,
    SYS_sendmmsg, /* batched frame sends of the packet port (AoE disks) */
    SYS_recvmmsg,
    SYS_shutdown,
    SYS_fcntl,
    SYS_fstat,
    SYS_newfstatat,
    SYS_lseek,
    SYS_eventfd2,
    SYS_unlink,
    SYS_getrandom,
    SYS_io_uring_enter,
    SYS_clone,
    SYS_clone3,
    SYS_set_robust_list,
    SYS_rseq,
    SYS_prctl,
    SYS_sched_getaffinity,
    SYS_sched_setaffinity,
    SYS_fsync,
    SYS_fdatasync,
    SYS_timerfd_settime,
    SYS_timerfd_gettime,
    SYS_membarrier,
    SYS_getuid,
    SYS_getppid,
    SYS_fallocate,
    SYS_uname,
    SYS_mincore,
    /* a reset re-creates the virtio transports: their epoll loop, eventfds and timers */
    SYS_epoll_create1,
    SYS_timerfd_create,
    SYS_io_uring_register,

};

/* Sanitizer builds: LeakSanitizer's exit-time tracer needs open, getdents, ptrace and more;
 * there a violation is logged to the audit log instead of killing, so the same allowlist is
 * still exercised by the ASan test runs. */
#ifdef MV_SANITIZE_BUILD
#define SECCOMP_DEFAULT_ACTION SECCOMP_RET_LOG
#else
#define SECCOMP_DEFAULT_ACTION SECCOMP_RET_KILL_PROCESS
#endif

int mv_seccomp_install(void)
{
    struct sock_filter prog[4 + 2 * MV_ARRAY_SIZE(allowed_syscalls) + 2];
    unsigned n = 0;
    prog[n++] =
        (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    prog[n++] =
        (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (size_t i = 0; i < MV_ARRAY_SIZE(allowed_syscalls); i++) {
        prog[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                                 (unsigned)allowed_syscalls[i], 0, 1);
        prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    }
    prog[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_DEFAULT_ACTION);
    struct sock_fprog fprog = {.len = (unsigned short)n, .filter = prog};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
        mv_err("seccomp: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        return -1;
    }
    /* TSYNC: threads already running (I/O, console) get the same filter */
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &fprog)) {
        mv_err("seccomp: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int mv_vm_lockdown(struct mv_vm *vm)
{
    const struct mv_vmm_config *cfg = vm->cfg;
    if (cfg->user) {
        /* everything privileged (/dev/kvm, TAPs, disks, sockets) is open by now */
        struct passwd *pw = getpwnam(cfg->user);
        if (!pw) {
            mv_err("--user: no such user '%s'", cfg->user);
            return -1;
        }
        if (setgroups(0, NULL) || setgid(pw->pw_gid) || setuid(pw->pw_uid)) {
            mv_err("--user %s: cannot drop privileges: %s", cfg->user, strerror(errno));
            return -1;
        }
        if (setuid(0) == 0) {
            mv_err("--user %s: could regain root; refusing to run", cfg->user);
            return -1;
        }
        mv_info("running as %s (uid %u)", cfg->user, (unsigned)pw->pw_uid);
    }
    /* jansson seeds its hash function from /dev/urandom on first use: do it while open works */
    json_object_seed(0);
    if (!cfg->no_seccomp && mv_seccomp_install())
        return -1;
    return 0;
}
