/* Installing a seccomp filter, shared by both stages of an enforcing native binary: the
   onefile bootstrap (onefile_seccomp.c) and the program it starts (program_seccomp.c).
   buildkit's Nuitka plugin (nuitka_guard.py) puts this text in front of each; neither
   loads libseccomp, each installs a classic BPF program with one system call.

   What happens when the kernel refuses depends on why:

   - ENOSYS or EINVAL: this kernel has no seccomp filters (before 3.17), or a user-mode
     emulator (QEMU's) implements neither seccomp() nor PR_SET_SECCOMP. The program stops
     with exit code 126 rather than run unconfined, unless the environment says
     BUILDKIT_SECCOMP_UNAVAILABLE=run; that variable is read only after the kernel
     refused, so it cannot switch off a filter the kernel would install.
   - EPERM or EACCES: a filter around the program (a container runtime's or a systemd
     service's profile) denies prctl() or seccomp(). The way out is a profile that allows
     them: the one the release ships for this program does.
   - anything else: the filter is damaged. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef BUILDKIT_ARTIFACT
#define BUILDKIT_ARTIFACT "this program"
#endif

#define BUILDKIT_SECCOMP_MAX 4096 /* BPF_MAXINSNS */
/* How the bootstrap hands the program stage's filter to the program it starts: hex, 16
   digits per instruction; "none" when the bootstrap's slot is not armed. */
#define BUILDKIT_SECCOMP_PROGRAM_ENV "BUILDKIT_SECCOMP_PROGRAM"

static void buildkit_seccomp_refuse(char const *what, char const *hint) {
    fprintf(stderr, "%s: error: refusing to start: %s\n  hint: %s\n", BUILDKIT_ARTIFACT, what,
            hint);
    _exit(126);
}

/* Install ``count`` instructions as a filter of this process and everything it starts.
   ``stage`` names it in messages ("its", "its program's"). */
static void buildkit_seccomp_load(struct sock_filter *program, uint32_t count,
                                  char const *stage) {
    char what[256];
    struct sock_fprog fprog = {.len = (unsigned short)count, .filter = program};

    if (count == 0 || count > BUILDKIT_SECCOMP_MAX) {
        snprintf(what, sizeof(what), "%s seccomp filter is damaged", stage);
        buildkit_seccomp_refuse(what, "download the program again and check its sha256");
    }
    /* no_new_privs first (a filter needs it without CAP_SYS_ADMIN); once set, as under the
       bootstrap's filter, it stays set and seccomp() alone is enough */
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0) {
        return;
    }
    if (errno == EACCES && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0) {
        return;
    }
    int why = errno;
    snprintf(what, sizeof(what), "%s seccomp filter cannot be installed (%s)", stage,
             strerror(why));
    if (why == ENOSYS || why == EINVAL) {
        char const *run = getenv("BUILDKIT_SECCOMP_UNAVAILABLE");
        if (run != NULL && strcmp(run, "run") == 0) {
            fprintf(stderr, "%s: warning: this kernel cannot install %s seccomp filter (%s); "
                            "running without it as BUILDKIT_SECCOMP_UNAVAILABLE says\n",
                    BUILDKIT_ARTIFACT, stage, strerror(why));
            return;
        }
        buildkit_seccomp_refuse(what, "run it on a Linux kernel with seccomp (3.17 or later, not "
                                      "under a user-mode emulator), or set "
                                      "BUILDKIT_SECCOMP_UNAVAILABLE=run to run it unconfined");
    }
    if (why == EPERM || why == EACCES) {
        buildkit_seccomp_refuse(what, "a seccomp profile around it (a container's, a systemd "
                                      "service's) denies prctl() or seccomp(); run it under "
                                      "the profile its release ships (NAME.seccomp.json, "
                                      "NAME.seccomp.conf), which allows them, or add both "
                                      "calls to yours");
    }
    buildkit_seccomp_refuse(what, "download the program again and check its sha256");
}
