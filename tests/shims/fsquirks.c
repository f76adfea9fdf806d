/* tests/shims/fsquirks.c — an LD_PRELOAD shim that makes this machine's file
 * system behave like others for outreach's ingest (tests/e2e/fsquirks.sh):
 *
 *   FSQUIRKS_DTUNKNOWN=1   readdir() reports every entry's type as DT_UNKNOWN,
 *                          as some file systems (XFS without ftype, some FUSE
 *                          and network ones) do, so the caller must lstat;
 *   FSQUIRKS_VANISH=PFX    openat() of a name starting with PFX first unlinks
 *                          it: the file was listed, then its producer took it
 *                          back before outreach opened it;
 *   FSQUIRKS_EMFILE=NAME   open() of a path whose last component is NAME fails
 *                          with EMFILE, as when the process's descriptors run
 *                          out exactly there (tests/e2e/resources.sh: an input
 *                          file that ulimit -n alone cannot single out).
 *
 * Everything else passes through to libc. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct dirent *quirk_entry(struct dirent *de)
{
	if (de && getenv("FSQUIRKS_DTUNKNOWN"))
		de->d_type = DT_UNKNOWN;
	return de;
}

struct dirent *readdir(DIR *d)
{
	static struct dirent *(*real)(DIR *);
	if (!real)
		real = (struct dirent *(*)(DIR *))dlsym(RTLD_NEXT, "readdir");
	return quirk_entry(real(d));
}

struct dirent64 *readdir64(DIR *d)
{
	static struct dirent64 *(*real)(DIR *);
	if (!real)
		real = (struct dirent64 *(*)(DIR *))dlsym(RTLD_NEXT, "readdir64");
	struct dirent64 *de = real(d);
	if (de && getenv("FSQUIRKS_DTUNKNOWN"))
		de->d_type = DT_UNKNOWN;
	return de;
}

static void quirk_vanish(int dirfd, const char *path)
{
	const char *pfx = getenv("FSQUIRKS_VANISH");
	if (pfx && *pfx && strchr(path, '/') == NULL && strncmp(path, pfx, strlen(pfx)) == 0)
		unlinkat(dirfd, path, 0);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	static int (*real)(int, const char *, int, ...);
	mode_t mode = 0;
	va_list ap;

	if (!real)
		real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat");
	va_start(ap, flags);
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		mode = (mode_t)va_arg(ap, int);
	va_end(ap);
	if (!(flags & O_CREAT))
		quirk_vanish(dirfd, path);
	return real(dirfd, path, flags, mode);
}

/* the same function under its large-file name (one symbol on 64-bit glibc) */
int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

int open(const char *path, int flags, ...)
{
	static int (*real)(const char *, int, ...);
	const char *name = getenv("FSQUIRKS_EMFILE"), *base = strrchr(path, '/');
	mode_t mode = 0;
	va_list ap;

	if (!real)
		real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
	va_start(ap, flags);
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		mode = (mode_t)va_arg(ap, int);
	va_end(ap);
	if (name && *name && strcmp(base ? base + 1 : path, name) == 0) {
		errno = EMFILE;
		return -1;
	}
	return real(path, flags, mode);
}

int open64(const char *path, int flags, ...) __attribute__((alias("open")));
