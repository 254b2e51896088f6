/* buildkit's seccomp slot: the native binary installs its own system call filter.

   The buildkit-guard Nuitka plugin compiles this file into the onefile bootstrap when the
   recipe asks for seccomp = "enforce". It reserves a read-only section, .buildkit_seccomp,
   holding a header and room for a classic BPF program. The build leaves it empty; after
   the recipe's checks recorded the calls the program makes, buildkit compiles the profile
   with libseccomp and writes it into the section in place (the file keeps its size and
   layout; see buildkit/seccomp/slot.py for the same layout in Python).

   A constructor, before the bootstrap's main() and before it unpacks anything: with an
   armed slot, it sets no_new_privs and installs the filter. The filter stays through fork
   and exec, so the program the bootstrap starts from the unpacked payload runs under it
   too. A call outside the profile then fails with EPERM.

   When the kernel cannot install a filter (no seccomp support, or a user-mode emulator
   such as QEMU's, which implements neither seccomp() nor PR_SET_SECCOMP), the program
   stops with exit code 126 rather than run unconfined, unless the environment says
   BUILDKIT_SECCOMP_UNAVAILABLE=run; that variable is read only after the kernel refused,
   so it cannot switch off a filter the kernel would install. */

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

struct buildkit_seccomp_slot {
    char magic[16];     /* "buildkit-seccomp" (no terminating NUL) */
    uint32_t version;   /* 1 */
    uint32_t armed;     /* 0: empty (the build's); 1: a filter follows */
    uint32_t arch;      /* AUDIT_ARCH_* the filter was compiled for */
    uint32_t count;     /* instructions in filter[] */
    uint32_t calls;     /* system calls the profile allows (for the audit) */
    uint32_t reserved[3]; /* [0..1]: address families socket() is limited to, a 64-bit
                             mask (for the audit; the filter itself checks them) */
    struct sock_filter filter[BUILDKIT_SECCOMP_MAX];
};

/* volatile: the compiler must read what buildkit wrote after the build, not the zeros it
   saw. */
__attribute__((section(".buildkit_seccomp"), used, aligned(16)))
static const volatile struct buildkit_seccomp_slot buildkit_seccomp = {
    .magic = {'b', 'u', 'i', 'l', 'd', 'k', 'i', 't', '-', 's', 'e', 'c', 'c', 'o', 'm', 'p'},
    .version = 1,
};

__attribute__((constructor(101))) static void buildkit_seccomp_install(void) {
    static struct sock_filter program[BUILDKIT_SECCOMP_MAX];
    uint32_t count = buildkit_seccomp.count;

    if (buildkit_seccomp.armed == 0) {
        return;
    }
    if (count == 0 || count > BUILDKIT_SECCOMP_MAX) {
        fprintf(stderr, "%s: error: refusing to start: its seccomp filter is damaged\n"
                        "  hint: download the program again and check its sha256\n",
                BUILDKIT_ARTIFACT);
        _exit(126);
    }
    for (uint32_t i = 0; i < count; i++) {
        program[i].code = buildkit_seccomp.filter[i].code;
        program[i].jt = buildkit_seccomp.filter[i].jt;
        program[i].jf = buildkit_seccomp.filter[i].jf;
        program[i].k = buildkit_seccomp.filter[i].k;
    }
    struct sock_fprog fprog = {.len = (unsigned short)count, .filter = program};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) == 0) {
        return;
    }
    int why = errno;
    if (why == ENOSYS || why == EINVAL) {
        char const *run = getenv("BUILDKIT_SECCOMP_UNAVAILABLE");
        if (run != NULL && strcmp(run, "run") == 0) {
            fprintf(stderr, "%s: warning: this kernel cannot install the program's seccomp "
                            "filter (%s); running without it as BUILDKIT_SECCOMP_UNAVAILABLE "
                            "says\n",
                    BUILDKIT_ARTIFACT, strerror(why));
            return;
        }
    }
    fprintf(stderr,
            "%s: error: refusing to start: its seccomp filter cannot be installed (%s)\n"
            "  hint: run it on a Linux kernel with seccomp (3.17 or later, not under a "
            "user-mode emulator), or set BUILDKIT_SECCOMP_UNAVAILABLE=run to run it "
            "unconfined\n",
            BUILDKIT_ARTIFACT, strerror(why));
    _exit(126);
}
