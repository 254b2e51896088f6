/* buildkit's seccomp slot: the native binary installs its own system call filters.

   The buildkit-guard Nuitka plugin compiles this file (after seccomp_install.h) into the
   onefile bootstrap when the recipe asks for seccomp = "enforce". It reserves a read-only
   section, .buildkit_seccomp, holding a header and room for two classic BPF programs. The
   build leaves it empty; after the recipe's checks recorded the calls the bootstrap and
   the program make, buildkit compiles both filters with libseccomp and writes them into
   the section in place (the file keeps its size and layout; see buildkit/seccomp/slot.py
   for the same layout in Python).

   Two stages, because a filter stays through fork and exec and filters stack (the
   strictest answer wins):

   1. The bootstrap's filter allows what the bootstrap and the program make together,
      including what the bootstrap needs to start the program (clone, execve) and what the
      program needs to install its own filter (seccomp). A constructor installs it before
      the bootstrap's main() and before anything is unpacked.
   2. The program's filter allows what the program itself made while the checks ran: no
      execve unless they saw it start a program, clone for threads only unless they saw
      it fork, clone3 answered with ENOSYS (libc then uses clone). The bootstrap hands it
      to the program it starts in the environment (BUILDKIT_SECCOMP_PROGRAM, set here
      whatever the caller's environment held); program_seccomp.c, compiled into the
      program, installs it before the program's main(). */

struct buildkit_seccomp_slot {
    char magic[16];     /* "buildkit-seccomp" (no terminating NUL) */
    uint32_t version;   /* 2 */
    uint32_t armed;     /* 0: empty (the build's); 1: a filter follows */
    uint32_t arch;      /* AUDIT_ARCH_* the filter was compiled for */
    uint32_t count;     /* instructions in filter[] */
    uint32_t calls;     /* system calls the profile allows (for the audit) */
    uint32_t families[2]; /* the address families socket() is limited to, a 64-bit mask
                             (for the audit; the filter itself checks them) */
    uint32_t program_count; /* instructions in program[] */
    uint32_t program_calls; /* system calls the program's filter allows (for the audit) */
    uint32_t program_flags; /* bit 0: it may start programs, bit 1: it may fork */
    uint32_t reserved[2];
    struct sock_filter filter[BUILDKIT_SECCOMP_MAX];
    struct sock_filter program[BUILDKIT_SECCOMP_MAX];
};

/* volatile: the compiler must read what buildkit wrote after the build, not the zeros it
   saw. */
__attribute__((section(".buildkit_seccomp"), used, aligned(16)))
static const volatile struct buildkit_seccomp_slot buildkit_seccomp = {
    .magic = {'b', 'u', 'i', 'l', 'd', 'k', 'i', 't', '-', 's', 'e', 'c', 'c', 'o', 'm', 'p'},
    .version = 2,
};

/* the program's filter as the environment carries it: 16 hex digits per instruction */
static char buildkit_seccomp_hex[BUILDKIT_SECCOMP_MAX * 16 + 1];

static void buildkit_seccomp_hand_over(uint32_t count) {
    static char const digits[] = "0123456789abcdef";
    char *out = buildkit_seccomp_hex;

    for (uint32_t i = 0; i < count; i++) {
        unsigned char insn[8];
        uint16_t code = buildkit_seccomp.program[i].code;
        uint32_t k = buildkit_seccomp.program[i].k;
        insn[0] = (unsigned char)(code & 0xff);
        insn[1] = (unsigned char)(code >> 8);
        insn[2] = buildkit_seccomp.program[i].jt;
        insn[3] = buildkit_seccomp.program[i].jf;
        for (int b = 0; b < 4; b++) {
            insn[4 + b] = (unsigned char)(k >> (8 * b));
        }
        for (int b = 0; b < 8; b++) {
            *out++ = digits[insn[b] >> 4];
            *out++ = digits[insn[b] & 0xf];
        }
    }
    *out = 0;
    if (setenv(BUILDKIT_SECCOMP_PROGRAM_ENV, buildkit_seccomp_hex, 1) != 0) {
        buildkit_seccomp_refuse("it cannot hand its program its seccomp filter",
                                "the environment is too large; start it with fewer variables");
    }
}

__attribute__((constructor(101))) static void buildkit_seccomp_install(void) {
    static struct sock_filter filter[BUILDKIT_SECCOMP_MAX];
    uint32_t count = buildkit_seccomp.count;
    uint32_t program_count = buildkit_seccomp.program_count;

    if (buildkit_seccomp.armed == 0) {
        /* not armed (the build's own run, which records the calls): nor is the program */
        if (setenv(BUILDKIT_SECCOMP_PROGRAM_ENV, "none", 1) != 0) {
            _exit(126);
        }
        return;
    }
    if (count == 0 || count > BUILDKIT_SECCOMP_MAX || program_count == 0 ||
        program_count > BUILDKIT_SECCOMP_MAX) {
        buildkit_seccomp_refuse("its seccomp filter is damaged",
                                "download the program again and check its sha256");
    }
    buildkit_seccomp_hand_over(program_count);
    for (uint32_t i = 0; i < count; i++) {
        filter[i].code = buildkit_seccomp.filter[i].code;
        filter[i].jt = buildkit_seccomp.filter[i].jt;
        filter[i].jf = buildkit_seccomp.filter[i].jf;
        filter[i].k = buildkit_seccomp.filter[i].k;
    }
    buildkit_seccomp_load(filter, count, "its");
}
