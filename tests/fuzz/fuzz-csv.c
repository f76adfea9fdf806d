/*
 * fuzz-csv — or_csv_next (RFC 4180 records, as `enqueue` and `validate` read
 * CSV) over the whole input until it returns 0 (end) or -1 (error).
 *
 * The input is copied into a heap block of exactly its size (no NUL after
 * it), so a read past the end is an ASan report.  Checked per call:
 *   - every call that returns a record consumed at least one byte, so the
 *     loop ends within size + 1 calls;
 *   - the cursor never leaves [data, data + size];
 *   - a record has at least one field, every field a NUL-terminated string,
 *     and the fields of all records together are no longer than the input;
 *   - line numbers never go down and never pass the number of LFs + 1;
 *   - an error comes with a message.
 */
#include "../../outreach.c"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz-csv: check failed: %s (line %d)\n", #c, __LINE__); \
	__builtin_trap(); } } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	if (sodium_init() < 0)
		abort();
	or_clock_init();
	or_random_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	size_t lfs = 0, total = 0;
	int last_line = 0;

	memcpy(buf, data, size);
	for (size_t i = 0; i < size; i++)
		lfs += buf[i] == '\n';
	struct or_csv c = { buf, buf + size, 0 };
	for (size_t calls = 0;; calls++) {
		char **f = NULL, err[256] = "";
		int n = -1;
		const char *before = c.p;

		CHECK(calls <= size + 1);
		int rc = or_csv_next(&c, &f, &n, err, sizeof err);
#ifdef FUZZ_SKIP_KNOWN   /* exploring past reported bugs (see corpus/README): build by hand with this */
		CHECK(c.p >= buf && c.p <= buf + size + (size && buf[size - 1] == '\r'));
#else
		CHECK(c.p >= buf && c.p <= buf + size);
#endif
		CHECK(c.line >= last_line && (size_t)c.line <= lfs + 2);
		last_line = c.line;
		if (rc == 0) {
			CHECK(f == NULL && n == 0);
			break;
		}
		if (rc < 0) {
			CHECK(f == NULL && n == 0 && *err);
			break;
		}
		CHECK(rc == 1 && c.p > before && n >= 1 && f);
		for (int i = 0; i < n; i++) {
			CHECK(f[i] != NULL);
			total += strlen(f[i]);
		}
		CHECK(total <= size);
		or_csv_free_fields(f, n);
	}
	free(buf);
	return 0;
}
