# outreach — build, test, demo.  `make` builds ./outreach; `make test` runs every test.
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wformat=2
LIBS    = -lcurl -lsqlite3 -lconfig -lsodium -lidn2 -lresolv -lm
PKGS    = libcurl4-openssl-dev libsqlite3-dev libconfig-dev libsodium-dev libidn2-dev

# make test SAN=1: AddressSanitizer + UBSan build of the unit tests and the
# end-to-end suite (tests/run.sh reads OUTREACH_BIN).
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ifeq ($(SAN),1)
BIN      = outreach-san
UNIT     = tests/unit-san
else
BIN      = outreach
UNIT     = tests/unit
endif

all: outreach

# The disposable-domain list is compiled in: conf/disposable-domains.txt,
# one lower-case domain a line (make update-lists refreshes it from npm).
disposable.inc: conf/disposable-domains.txt
	@if LC_ALL=C grep -qv '^[a-z0-9.-]*$$' $<; then echo "$<: unexpected characters"; exit 1; fi
	LC_ALL=C sort -u $< | sed 's/.*/"&",/' > $@

update-lists:
	contrib/lists/update-disposable.sh

outreach: outreach.c outreach.h disposable.inc
	$(CC) $(WARN) $(CFLAGS) -o $@ outreach.c $(LIBS)

outreach-san: outreach.c outreach.h disposable.inc
	$(CC) $(WARN) -O1 -g $(SANFLAGS) -o $@ outreach.c $(LIBS)

tests/unit: tests/unit.c outreach.c outreach.h disposable.inc
	$(CC) $(WARN) -Wno-unused-function -O1 -g -DOR_TEST -DOR_NO_MAIN -o $@ tests/unit.c outreach.c $(LIBS)

tests/unit-san: tests/unit.c outreach.c outreach.h disposable.inc
	$(CC) $(WARN) -Wno-unused-function -O1 -g $(SANFLAGS) -DOR_TEST -DOR_NO_MAIN -o $@ tests/unit.c outreach.c $(LIBS)

test: $(BIN) $(UNIT)
	OUTREACH_BIN=$(CURDIR)/$(BIN) OUTREACH_UNIT=$(CURDIR)/$(UNIT) SAN=$(SAN) tests/run.sh

# Installs the four libraries when missing (as root), else says how.
deps:
	@missing=$$(for p in $(PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y $$missing; \
	  else echo "run: sudo apt-get install -y $$missing"; exit 1; fi; fi

# The demo: a spool under spool/demo, the file provider, three senders and two
# clients; rendered messages land in spool/demo/outbox/*.eml.
demo: deps outreach
	@tests/demo.sh

clean:
	rm -f outreach outreach-san tests/unit tests/unit-san disposable.inc

.PHONY: all test deps demo clean update-lists
