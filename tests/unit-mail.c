/* tests/unit-mail.c — unit tests of MAIL READING, included by tests/unit.c (one
 * translation unit with outreach.c); UNIT_MAIL_TESTS lists them for its table. */

#define UNIT_MAIL_TESTS
