/* tests/shims/oom.c — an LD_PRELOAD shim whose allocator fails once, at the
 * N-th call, as a machine out of memory does (tests/e2e/resources.sh, `make
 * oomwalk`):
 *
 *   OOM_AT=N       the N-th call of malloc, calloc, realloc or the aligned
 *                  allocators (counted from the process's first) returns NULL
 *                  with errno ENOMEM; every other call succeeds;
 *   OOM_COUNT=F    at exit, the number of calls made is written to F (so a
 *                  walk knows the range of N for one run).
 *
 * The real allocators are glibc's __libc_* entry points (no dlsym, which
 * allocates itself).  Calls made by libc, libcurl, SQLite and libconfig all
 * count: they reach malloc through the same symbol. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static unsigned long calls, fail_at;
static int armed = -1;

/* 1 when this call is the one that fails */
static int oom_now(void)
{
	if (armed < 0) {
		const char *s = getenv("OOM_AT");   /* getenv does not allocate */
		fail_at = s ? strtoul(s, NULL, 10) : 0;
		armed = fail_at > 0;
	}
	calls++;
	if (armed && calls == fail_at) {
		errno = ENOMEM;
		return 1;
	}
	return 0;
}

void *malloc(size_t n) { return oom_now() ? NULL : __libc_malloc(n); }
void *calloc(size_t k, size_t n) { return oom_now() ? NULL : __libc_calloc(k, n); }
void *realloc(void *p, size_t n) { return oom_now() ? NULL : __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { return oom_now() ? NULL : __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { return oom_now() ? NULL : __libc_memalign(a, n); }

int posix_memalign(void **out, size_t a, size_t n)
{
	void *p = oom_now() ? NULL : __libc_memalign(a, n);

	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

__attribute__((destructor)) static void oom_report(void)
{
	const char *f = getenv("OOM_COUNT");
	char line[32];
	int fd, n;

	if (!f || (fd = open(f, O_WRONLY | O_CREAT | O_TRUNC, 0644)) == -1)
		return;
	n = snprintf(line, sizeof line, "%lu\n", calls);
	if (write(fd, line, (size_t)n) != n)
		n = 0;
	close(fd);
}
