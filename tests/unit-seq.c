/* tests/unit-seq.c — unit tests of SEQUENCES, included by tests/unit.c (one
 * translation unit with outreach.c); UNIT_SEQ_TESTS lists them for its table. */

#define UNIT_SEQ_TESTS
