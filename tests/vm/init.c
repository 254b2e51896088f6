/* PID 1 of the aarch64 test VM (tests/vm/__init__.py): a real arm64 kernel, so a
 * seccomp filter can be installed (QEMU's user mode cannot). It mounts /proc, /dev and
 * a /tmp, brings up the loopback interface, opens a TCP listener and a closed port on
 * 127.0.0.1, then runs each line of /commands (arguments separated by tabs; {port} and
 * {closed_port} replaced; NAME=VALUE words before the program are its environment) and
 * reports each on the console:
 *
 *   BK-RUN <n>            before the command's output
 *   BK-EXIT <n> <status>  its exit code, or 128+signal
 *
 * then powers the machine off. Built with zig for aarch64-linux-musl, static. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ARGS 64
#define MAX_LINE 4096

static void die(const char *what) {
    printf("BK-ERROR %s: %s\n", what, strerror(errno));
    fflush(stdout);
    reboot(RB_POWER_OFF);
    _exit(1);
}

static int tcp_port(int do_listen) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
    if (do_listen && listen(fd, 128) < 0) die("listen");
    if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0) die("getsockname");
    return ntohs(addr.sin_port); /* the listener stays open: the kernel completes handshakes */
}

static void loopback_up(void) {
    struct ifreq ifr = {0};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    strcpy(ifr.ifr_name, "lo");
    if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) die("lo flags");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) die("lo up");
    close(fd);
}

/* word with {port} / {closed_port} replaced, in a new string */
static char *expand(const char *word, int port, int closed) {
    char *out = malloc(strlen(word) + 64), *o = out;
    while (*word) {
        if (strncmp(word, "{port}", 6) == 0) {
            o += sprintf(o, "%d", port);
            word += 6;
        } else if (strncmp(word, "{closed_port}", 13) == 0) {
            o += sprintf(o, "%d", closed);
            word += 13;
        } else {
            *o++ = *word++;
        }
    }
    *o = 0;
    return out;
}

int main(void) {
    mkdir("/proc", 0755);
    mkdir("/dev", 0755);
    mkdir("/tmp", 01777);
    if (mount("proc", "/proc", "proc", 0, NULL) < 0) die("mount /proc");
    if (mount("devtmpfs", "/dev", "devtmpfs", 0, NULL) < 0 && errno != EBUSY) die("mount /dev");
    int console = open("/dev/console", O_RDWR); /* the archive has no /dev/console node */
    if (console >= 0) {
        dup2(console, 0);
        dup2(console, 1);
        dup2(console, 2);
    }
    if (mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777") < 0) die("mount /tmp");
    mkdir("/tmp/home", 0700);
    loopback_up();
    int port = tcp_port(1), closed = tcp_port(0);
    printf("BK-READY port=%d closed_port=%d\n", port, closed);
    fflush(stdout);

    FILE *commands = fopen("/commands", "r");
    if (!commands) die("/commands");
    char line[MAX_LINE];
    for (int n = 1; fgets(line, sizeof line, commands); n++) {
        line[strcspn(line, "\n")] = 0;
        char *argv[MAX_ARGS + 1], *envp[MAX_ARGS + 4];
        int argc = 0, envc = 0;
        envp[envc++] = "HOME=/tmp/home";
        envp[envc++] = "PATH=/bin:/usr/bin";
        envp[envc++] = "LANG=C.UTF-8";
        for (char *save, *w = strtok_r(line, "\t", &save); w; w = strtok_r(NULL, "\t", &save)) {
            char *word = expand(w, port, closed);
            if (argc == 0 && strchr(word, '=') && word[0] != '/' && envc < MAX_ARGS)
                envp[envc++] = word;
            else if (argc < MAX_ARGS)
                argv[argc++] = word;
        }
        argv[argc] = NULL;
        envp[envc] = NULL;
        if (argc == 0) continue;
        printf("BK-RUN %d\n", n);
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) die("fork");
        if (pid == 0) {
            int null = open("/dev/null", O_RDONLY);
            dup2(null, 0);
            execve(argv[0], argv, envp);
            printf("BK-ERROR exec %s: %s\n", argv[0], strerror(errno));
            _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        printf("BK-EXIT %d %d\n", n, code);
        fflush(stdout);
    }
    printf("BK-DONE\n");
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
