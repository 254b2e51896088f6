/* buildkit's program stage: the program an enforcing onefile binary starts installs the
   filter made from what the program itself did while the checks ran.

   The buildkit-guard Nuitka plugin compiles this file (after seccomp_install.h) into the
   program, not the bootstrap, when the recipe asks for seccomp = "enforce". The bootstrap
   (onefile_seccomp.c) always sets BUILDKIT_SECCOMP_PROGRAM for the program it starts: the
   filter in hex, or "none" when its slot is not armed (the build's recording run). A
   constructor reads it before the program's main(), so before any Python code runs,
   removes it from the environment and installs the filter on top of the bootstrap's.
   Without the variable the program was not started by its bootstrap (someone ran the
   unpacked file directly) and it refuses to start: there is no filter to skip to. */

static struct sock_filter buildkit_program_filter[BUILDKIT_SECCOMP_MAX];

static int buildkit_hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

__attribute__((constructor(101))) static void buildkit_seccomp_program(void) {
    char const *hex = getenv(BUILDKIT_SECCOMP_PROGRAM_ENV);

    if (hex == NULL) {
        buildkit_seccomp_refuse("it was not started by its onefile binary, which gives it "
                                "its seccomp filter",
                                "run the onefile binary, not the file it unpacks");
    }
    if (strcmp(hex, "none") == 0) {
        unsetenv(BUILDKIT_SECCOMP_PROGRAM_ENV);
        return;
    }
    size_t len = strlen(hex);
    if (len == 0 || len % 16 != 0 || len / 16 > BUILDKIT_SECCOMP_MAX) {
        buildkit_seccomp_refuse("its program's seccomp filter is damaged",
                                "download the program again and check its sha256");
    }
    uint32_t count = (uint32_t)(len / 16);
    for (uint32_t i = 0; i < count; i++) {
        unsigned char insn[8];
        for (int b = 0; b < 8; b++) {
            int high = buildkit_hex_digit(hex[16 * i + 2 * b]);
            int low = buildkit_hex_digit(hex[16 * i + 2 * b + 1]);
            if (high < 0 || low < 0) {
                buildkit_seccomp_refuse("its program's seccomp filter is damaged",
                                        "download the program again and check its sha256");
            }
            insn[b] = (unsigned char)(high << 4 | low);
        }
        buildkit_program_filter[i].code = (uint16_t)(insn[0] | insn[1] << 8);
        buildkit_program_filter[i].jt = insn[2];
        buildkit_program_filter[i].jf = insn[3];
        buildkit_program_filter[i].k = (uint32_t)insn[4] | (uint32_t)insn[5] << 8 |
                                       (uint32_t)insn[6] << 16 | (uint32_t)insn[7] << 24;
    }
    unsetenv(BUILDKIT_SECCOMP_PROGRAM_ENV);
    buildkit_seccomp_load(buildkit_program_filter, count, "its program's");
}
