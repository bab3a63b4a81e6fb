/*
 * probe: a tiny static helper copied into every spec-tests bundle as /bin/probe.
 *
 * It reports process attributes that busybox applets cannot show precisely.
 * One sub-command per invocation; output is line oriented and easy to parse.
 *
 *   probe fds            one line per open fd: "<fd> <readlink target>"
 *                        (the directory fd used for the listing is left out)
 *   probe rlimits        one line per resource: "<NAME> <soft> <hard>"
 *   probe umask          the process umask as four octal digits
 *   probe winsize        "<rows> <cols>" of the terminal on fd 0
 *   probe ids            "uid r e s", "gid r e s", "groups g1 g2 ..."
 *   probe sockname <fd>  "<family> <path>" of a socket fd (unix sockets)
 *   probe keyring        the serial number of the session keyring (decimal)
 *   probe alloc <MiB>    allocate and touch MiB mebibytes, then print "allocated <MiB>"
 *   probe syscall <nr>... make each system call (no arguments): "<nr> errno=<n or 0>"
 *   probe exewatch <sec> [<dev>:<ino>...] [memfd]
 *                        for <sec> seconds, open every other process's /proc/<pid>/exe with
 *                        O_PATH as soon as it appears (CVE-2019-5736) and keep it; for each
 *                        new binary print "exe <pid> <dev>:<ino> <target> protected=<0|1>".
 *                        The attack, only on the files named by <dev>:<ino> (the test's
 *                        private copies of the runtime: protected=1) and, with "memfd",
 *                        on memfds (in a pid namespace of the test's own only): reopen
 *                        through /proc/self/fd and write, appending to a protected file and
 *                        rewriting a memfd's first byte with itself; a busy file is tried
 *                        again at the end. Then "write <dev>:<ino> <target> <ok|errno>" for
 *                        each, and "done scans=<n> denied=<O_PATH opens refused>"
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <fcntl.h>
#include <time.h>
#include <termios.h>
#include <unistd.h>

static int cmd_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        perror("opendir /proc/self/fd");
        return 1;
    }
    int own = dirfd(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (fd == own)
            continue;
        char link[64], target[PATH_MAX + 1];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, PATH_MAX);
        if (n < 0)
            snprintf(target, sizeof(target), "?errno=%d", errno);
        else
            target[n] = '\0';
        printf("%d %s\n", fd, target);
    }
    closedir(d);
    return 0;
}

static void print_limit(rlim_t v)
{
    if (v == RLIM_INFINITY)
        printf("unlimited");
    else
        printf("%llu", (unsigned long long)v);
}

static int cmd_rlimits(void)
{
    static const struct {
        const char *name;
        int resource;
    } table[] = {
        {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_FSIZE", RLIMIT_FSIZE},
        {"RLIMIT_DATA", RLIMIT_DATA},       {"RLIMIT_STACK", RLIMIT_STACK},
        {"RLIMIT_CORE", RLIMIT_CORE},       {"RLIMIT_RSS", RLIMIT_RSS},
        {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_NOFILE", RLIMIT_NOFILE},
        {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_AS", RLIMIT_AS},
        {"RLIMIT_LOCKS", RLIMIT_LOCKS},     {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
        {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
        {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        struct rlimit rl;
        if (getrlimit(table[i].resource, &rl) != 0) {
            perror(table[i].name);
            return 1;
        }
        printf("%s ", table[i].name);
        print_limit(rl.rlim_cur);
        putchar(' ');
        print_limit(rl.rlim_max);
        putchar('\n');
    }
    return 0;
}

static int cmd_umask(void)
{
    mode_t m = umask(0);
    umask(m);
    printf("%04o\n", (unsigned)m);
    return 0;
}

static int cmd_winsize(void)
{
    struct winsize ws;
    if (ioctl(0, TIOCGWINSZ, &ws) != 0) {
        perror("TIOCGWINSZ");
        return 1;
    }
    printf("%u %u\n", ws.ws_row, ws.ws_col);
    return 0;
}

static int cmd_ids(void)
{
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    gid_t groups[256];
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0) {
        perror("getres[ug]id");
        return 1;
    }
    int n = getgroups(256, groups);
    if (n < 0) {
        perror("getgroups");
        return 1;
    }
    printf("uid %u %u %u\n", ru, eu, su);
    printf("gid %u %u %u\n", rg, eg, sg);
    printf("groups");
    for (int i = 0; i < n; i++)
        printf(" %u", groups[i]);
    putchar('\n');
    return 0;
}

static int cmd_sockname(const char *arg)
{
    int fd = atoi(arg);
    struct sockaddr_un sa;
    socklen_t len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0) {
        perror("getsockname");
        return 1;
    }
    if (sa.sun_family != AF_UNIX) {
        printf("family-%d\n", sa.sun_family);
        return 0;
    }
    printf("unix %s\n", sa.sun_path);
    return 0;
}

static int cmd_keyring(void)
{
    /* keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, create = 0) */
    long id = syscall(SYS_keyctl, 0, -3, 0);
    if (id < 0) {
        perror("keyctl");
        return 1;
    }
    printf("%ld\n", id);
    return 0;
}

/* Each number as a system call without arguments: "<nr> errno=<n>" (0 when it succeeded). */
static int cmd_syscall(int n, char **numbers)
{
    for (int i = 0; i < n; i++) {
        errno = 0;
        long ret = syscall(atol(numbers[i]), 0, 0, 0, 0, 0, 0);
        printf("%s errno=%d\n", numbers[i], ret < 0 ? errno : 0);
    }
    return 0;
}

static int cmd_alloc(const char *arg)
{
    long mib = atol(arg);
    const size_t chunk = 1024 * 1024;
    for (long i = 0; i < mib; i++) {
        volatile char *p = malloc(chunk);
        if (p == NULL) {
            perror("malloc");
            return 1;
        }
        /* touch every page so that it is really charged */
        for (size_t off = 0; off < chunk; off += 4096)
            p[off] = (char)(i + 1);
    }
    printf("allocated %ld\n", mib);
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct exe_seen {
    dev_t dev;
    ino_t ino;
    int fd;        /* kept O_PATH fd of a target, -1 otherwise */
    int done;      /* the write was tried and did not fail with ETXTBSY */
    char target[128];
};

/* The write of the attack: append to a protected copy, rewrite a memfd's first byte as is. */
static int exe_write(struct exe_seen *t, int protected)
{
    char reopen[64];
    snprintf(reopen, sizeof(reopen), "/proc/self/fd/%d", t->fd);
    int w = open(reopen, (protected ? O_WRONLY | O_APPEND : O_RDWR) | O_CLOEXEC);
    if (w < 0)
        return errno;
    int err = 0;
    if (protected) {
        if (write(w, "written by the container\n", 25) != 25)
            err = errno ? errno : EIO;
    } else {
        char b;
        if (pread(w, &b, 1, 0) != 1 || pwrite(w, &b, 1, 0) != 1)
            err = errno ? errno : EIO;
    }
    close(w);
    return err;
}

static void exe_report(struct exe_seen *t, int protected, int final)
{
    if (t->fd < 0 || t->done)
        return;
    int err = exe_write(t, protected);
    if (err == ETXTBSY && !final)
        return;
    t->done = 1;
    printf("write %u:%u:%lu %s %s\n", major(t->dev), minor(t->dev), (unsigned long)t->ino,
           t->target, err ? strerror(err) : "ok");
    fflush(stdout);
}

static int exe_protected(struct exe_seen *t, char **ids, int nids)
{
    char id[64];
    snprintf(id, sizeof(id), "%u:%u:%lu", major(t->dev), minor(t->dev), (unsigned long)t->ino);
    for (int i = 0; i < nids; i++)
        if (strcmp(ids[i], id) == 0)
            return 1;
    return 0;
}

static int cmd_exewatch(const char *arg, char **ids, int nids)
{
    double deadline = now() + atof(arg);
    pid_t self = getpid();
    static struct exe_seen seen[256];
    int nseen = 0;
    long scans = 0, denied = 0;
    while (now() < deadline) {
        DIR *d = opendir("/proc");
        if (!d) {
            perror("opendir /proc");
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            pid_t pid = atoi(e->d_name);
            if (pid <= 0 || pid == self)
                continue;
            char link[64];
            snprintf(link, sizeof(link), "/proc/%d/exe", pid);
            int fd = open(link, O_PATH | O_CLOEXEC);
            if (fd < 0) {
                if (errno == EACCES || errno == EPERM)
                    denied++;
                continue;
            }
            struct stat st;
            int known = fstat(fd, &st) != 0;
            for (int i = 0; i < nseen && !known; i++)
                known = seen[i].dev == st.st_dev && seen[i].ino == st.st_ino;
            if (known || nseen == 256) {
                close(fd);
                continue;
            }
            struct exe_seen *t = &seen[nseen++];
            t->dev = st.st_dev;
            t->ino = st.st_ino;
            t->done = 0;
            ssize_t n = readlink(link, t->target, sizeof(t->target) - 1);
            if (n < 0)
                n = snprintf(t->target, sizeof(t->target), "?");
            t->target[n] = '\0';
            for (char *c = t->target; *c; c++)
                if (*c == ' ')
                    *c = '_';
            int protected = exe_protected(t, ids, nids);
            printf("exe %d %u:%u:%lu %s protected=%d\n", pid, major(st.st_dev),
                   minor(st.st_dev), (unsigned long)st.st_ino, t->target, protected);
            fflush(stdout);
            int memfd = strncmp(t->target, "/memfd:", 7) == 0;
            int attack_memfds = nids > 0 && strcmp(ids[nids - 1], "memfd") == 0;
            if (protected || (memfd && attack_memfds)) {
                t->fd = fd;
                exe_report(t, protected, 0);
            } else {
                t->fd = -1;
                close(fd);
            }
        }
        closedir(d);
        scans++;
        for (int i = 0; i < nseen; i++)
            exe_report(&seen[i], exe_protected(&seen[i], ids, nids), 0);
    }
    for (int i = 0; i < nseen; i++)
        exe_report(&seen[i], exe_protected(&seen[i], ids, nids), 1);
    printf("done scans=%ld denied=%ld\n", scans, denied);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: probe fds|rlimits|umask|winsize|ids|sockname FD|keyring|alloc MIB|syscall NR...|exewatch SEC [DEV:INO...]\n");
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "fds") == 0)
        return cmd_fds();
    if (strcmp(cmd, "rlimits") == 0)
        return cmd_rlimits();
    if (strcmp(cmd, "umask") == 0)
        return cmd_umask();
    if (strcmp(cmd, "winsize") == 0)
        return cmd_winsize();
    if (strcmp(cmd, "ids") == 0)
        return cmd_ids();
    if (strcmp(cmd, "sockname") == 0 && argc > 2)
        return cmd_sockname(argv[2]);
    if (strcmp(cmd, "keyring") == 0)
        return cmd_keyring();
    if (strcmp(cmd, "alloc") == 0 && argc > 2)
        return cmd_alloc(argv[2]);
    if (strcmp(cmd, "syscall") == 0 && argc > 2)
        return cmd_syscall(argc - 2, argv + 2);
    if (strcmp(cmd, "exewatch") == 0 && argc > 2)
        return cmd_exewatch(argv[2], argv + 3, argc - 3);
    fprintf(stderr, "probe: unknown command %s\n", cmd);
    return 2;
}
