/* buildkit's onefile guard: checks the extraction folder before Nuitka's bootstrap uses it.

   The buildkit-guard Nuitka plugin (nuitka_guard.py) compiles this file into the onefile
   bootstrap, with BUILDKIT_RUN_TAIL defined as the part of --onefile-tempdir-spec after
   "{CACHE_DIR}/" ("buildkit/run/<artifact>-<digest>") and BUILDKIT_ARTIFACT as the
   artifact's name (for messages: musl passes no argv to constructors). It runs as a constructor, before
   the bootstrap's main(): Nuitka extracts into that folder and then runs the program
   from it, and it creates missing folders but takes an existing one as it finds it.

   The cache folder is found exactly as Nuitka finds {CACHE_DIR}: $XDG_CACHE_HOME when it
   is an absolute path, else $HOME/.cache (the passwd entry's home without $HOME). Each
   folder below it (buildkit, buildkit/run, the artifact's own) is created here with mode
   0700 when missing; an existing one must be a real folder (not a symbolic link), owned
   by the user running the program, and not writable by group or others. The cache folder
   itself may be a symbolic link; it must be owned by this user or root and not writable
   by group or others unless it is sticky (then the folders below it are what protects the
   extraction). Anything else stops the program before anything is extracted or run, with
   a message naming the folder and exit code 126.

   On Linux the bootstrap finds its own file through /proc/self/exe, and without /proc
   mounted (a bare chroot, a minimal container root) Nuitka's bootstrap aborts with
   SIGABRT and no word. buildkit_needs_proc says what is missing first, exit code 126. */

/* Nuitka compiles in strict C11 mode: ask for POSIX with the XSI parts (lstat, S_ISVTX). */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef BUILDKIT_RUN_TAIL
#error "BUILDKIT_RUN_TAIL must name the extraction folder below the cache folder"
#endif
#ifndef BUILDKIT_ARTIFACT
#error "BUILDKIT_ARTIFACT must name the artifact"
#endif

#define BUILDKIT_GUARD_EXIT 126

/* "the cache folder" is $XDG_CACHE_HOME or ~/.cache; "the extraction folder" one below it. */
static void buildkit_refuse(int is_base, char const *path, char const *why, char const *hint) {
    fprintf(stderr,
            "%s: error: refusing to start: the %s folder %s %s\n"
            "  hint: %s; the program extracts itself again at its next start\n",
            BUILDKIT_ARTIFACT, is_base ? "cache" : "extraction", path, why, hint);
    exit(BUILDKIT_GUARD_EXIT);
}

static void buildkit_check(char const *path, struct stat const *st, int is_base) {
    char why[256];
    uid_t me = geteuid();

    char const *elsewhere = "set XDG_CACHE_HOME to a folder of your own";

    if (!S_ISDIR(st->st_mode)) {
        buildkit_refuse(is_base, path, "is not a folder", is_base ? elsewhere : "remove it");
    }
    if (st->st_uid != me && !(is_base && st->st_uid == 0)) {
        snprintf(why, sizeof(why), "is owned by uid %ld, not by the user running this (uid %ld)",
                 (long)st->st_uid, (long)me);
        buildkit_refuse(is_base, path, why,
                        is_base ? elsewhere : "remove it (as its owner or root)");
    }
    if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0 && !(is_base && (st->st_mode & S_ISVTX) != 0)) {
        snprintf(why, sizeof(why), "is writable by %s (mode %04o)",
                 (st->st_mode & S_IWOTH) != 0 ? "others" : "its group",
                 (unsigned)(st->st_mode & 07777));
        buildkit_refuse(is_base, path, why,
                        is_base ? "make it private (chmod go-w), or set XDG_CACHE_HOME to a "
                                  "folder of your own"
                                : "remove it: its contents cannot be trusted");
    }
}

#ifdef __linux__
__attribute__((constructor)) static void buildkit_needs_proc(void) {
    char self[8];
    if (readlink("/proc/self/exe", self, sizeof(self)) < 0) {
        fprintf(stderr,
                "%s: error: refusing to start: /proc/self/exe cannot be read (%s): /proc is "
                "not mounted here\n"
                "  hint: the program finds its own file through /proc; mount it (mount -t proc "
                "proc /proc) or start it where /proc is mounted\n",
                BUILDKIT_ARTIFACT, strerror(errno));
        exit(BUILDKIT_GUARD_EXIT);
    }
}
#endif

__attribute__((constructor)) static void buildkit_guard(void) {
    static char const tail[] = BUILDKIT_RUN_TAIL;
    char path[4096];
    struct stat st;

    char const *xdg = getenv("XDG_CACHE_HOME");
    int n;
    if (xdg != NULL && xdg[0] == '/') {
        n = snprintf(path, sizeof(path), "%s", xdg);
    } else {
        char const *home = getenv("HOME");
        if (home == NULL) {
            struct passwd *pw = getpwuid(getuid());
            if (pw == NULL) {
                return; /* Nuitka's bootstrap reports that it cannot find the folder */
            }
            home = pw->pw_dir;
        }
        n = snprintf(path, sizeof(path), "%s/.cache", home);
    }
    if (n < 0 || (size_t)n + 1 + sizeof(tail) > sizeof(path)) {
        buildkit_refuse(1, path, "has too long a name", "set XDG_CACHE_HOME to a shorter path");
    }
    while (n > 1 && path[n - 1] == '/') {
        path[--n] = '\0';
    }

    if (stat(path, &st) != 0) {
        if (errno != ENOENT) {
            buildkit_refuse(1, path, strerror(errno), "check the cache folder");
        }
        /* Missing: created as Nuitka would (mode 0700, with any missing parents). */
        for (char *slash = strchr(path + 1, '/');; slash = strchr(slash + 1, '/')) {
            if (slash != NULL) {
                *slash = '\0';
            }
            if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                buildkit_refuse(1, path, strerror(errno), "check the cache folder");
            }
            if (slash == NULL) {
                break;
            }
            *slash = '/';
        }
        if (stat(path, &st) != 0) {
            buildkit_refuse(1, path, strerror(errno), "check the cache folder");
        }
    }
    buildkit_check(path, &st, 1);

    size_t len = (size_t)n;
    path[len++] = '/';
    for (size_t i = 0;; i++) {
        char c = tail[i];
        if (c != '/' && c != '\0') {
            path[len++] = c;
            continue;
        }
        path[len] = '\0';
        if (lstat(path, &st) != 0) {
            if (errno != ENOENT) {
                buildkit_refuse(0, path, strerror(errno), "check the cache folder");
            }
            if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                buildkit_refuse(0, path, strerror(errno), "check the cache folder");
            }
            if (lstat(path, &st) != 0) {
                buildkit_refuse(0, path, strerror(errno), "check the cache folder");
            }
        }
        if (S_ISLNK(st.st_mode)) {
            buildkit_refuse(0, path, "is a symbolic link",
                            "remove the link; the program extracts only into a folder of its own");
        }
        buildkit_check(path, &st, 0);
        if (c == '\0') {
            break;
        }
        path[len++] = '/';
    }
}
