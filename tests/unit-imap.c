/* tests/unit-imap.c — unit tests of MAILBOXES, included by tests/unit.c (one
 * translation unit with outreach.c); UNIT_IMAP_TESTS lists them for its table. */

#define UNIT_IMAP_TESTS
