/*
 * fuzz-json — or_json_members (outreach's own reader of a JSON object's or
 * array's members, used for job files, feeds and provider answers) against
 * or_json_members_sql (SQLite's json_each, which it replaced), on the same
 * untrusted text.
 *
 * Checked on every input, for both kinds ("object" and "array"):
 *   - both accept it or both refuse it;
 *   - the same members in the same order, each with the same key, type and
 *     value bytes (vlen included);
 *   - the same NUL flag where the SQL reader's is right: it looks the member
 *     up again by its path ($.key), which finds the first of duplicate keys
 *     and misses keys a path cannot name, so it is compared for a key that
 *     is unique and of letters, digits and '_' (the reader here flags the
 *     string it read);
 *   - every key and value is NUL-terminated at vlen.
 * A nested object or array is compared as well, so the members of members
 * are checked too (two levels down).
 */
#include "../../outreach.c"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "fuzz-json: check failed: %s (line %d)\n", #c, __LINE__); \
	__builtin_trap(); } } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	return 0;
}

/* Whether the SQL reader's NUL flag can be trusted for member i (above). */
static int plain_unique(const struct or_member *m, int n, int i, const char *kind)
{
	if (strcmp(kind, "object"))
		return 1;
	for (const char *k = m[i].key; *k; k++)
		if (!isalnum((unsigned char)*k) && *k != '_')
			return 0;
	for (int j = 0; j < n; j++)
		if (j != i && !strcmp(m[j].key, m[i].key))
			return 0;
	return *m[i].key != 0;
}

static void same(const char *s, size_t n, const char *kind, int depth)
{
	struct or_member *a = NULL, *b = NULL;
	int na = 0, nb = 0, ra, rb;
	char ea[200], eb[200];

	ra = or_json_members(s, n, kind, &a, &na, ea, sizeof ea);
	rb = or_json_members_sql(s, n, kind, &b, &nb, eb, sizeof eb);
	CHECK(ra == rb);
	if (ra == 0) {
		CHECK(na == nb);
		for (int i = 0; i < na; i++) {
			CHECK(strcmp(a[i].key, b[i].key) == 0);
			CHECK(strcmp(a[i].type, b[i].type) == 0);
			CHECK(a[i].vlen == b[i].vlen);
			CHECK(memcmp(a[i].val, b[i].val, a[i].vlen) == 0);
			CHECK(a[i].val[a[i].vlen] == 0);
			if (plain_unique(a, na, i, kind))
				CHECK(a[i].nul == b[i].nul);
			CHECK(!a[i].nul || !strcmp(a[i].type, "text"));
			if (depth < 2 && (!strcmp(a[i].type, "object") || !strcmp(a[i].type, "array")))
				same(a[i].val, a[i].vlen, a[i].type, depth + 1);
		}
	}
	or_members_free(a, na);
	or_members_free(b, nb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 16)
		return 0;
	same((const char *)data, size, "object", 0);
	same((const char *)data, size, "array", 0);
	return 0;
}
