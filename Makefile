# outreach — build, test, demo.  `make` builds ./outreach; `make test` runs every test.
CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wformat=2
LIBS    = -lcurl -lsqlite3 -lconfig -lsodium -lidn2 -lresolv -lm
PKGS    = libcurl4-openssl-dev libsqlite3-dev libconfig-dev libsodium-dev libidn2-dev
# make PG=1: the PostgreSQL store (store.type = "postgresql", README "Several hosts")
# links libpq too.  A plain make on a fresh clone keeps the four libraries above (and
# what libcurl brings); `make test` and the Debian package build with PG=1.  The
# choice sticks (.flavour) until the next PG=0 or PG=1, so `make install` installs
# what was built.
PG      ?= $(or $(shell sed -n 's/^PG=//p' .flavour 2>/dev/null),0)
PG_CFLAGS = $(if $(filter 1,$(PG)),-DOR_PG=1 $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql))
PG_LIBS   = $(if $(filter 1,$(PG)),-lpq)
PG_PKGS   = libpq-dev
# what the tests run beside the build (promtool comes only with prometheus in Debian 12)
TEST_PKGS = $(PKGS) $(PG_PKGS) postgresql-15 build-essential pkg-config sqlite3 tzdata prometheus systemd python3 groff-base \
            ca-certificates openssl curl unbound clang libclang-rt-14-dev faketime lighttpd dovecot-imapd strace

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

# The flavour the binaries were built as (PG=0 or 1): a build of the other one
# rebuilds them.
.flavour: FORCE
	@echo "PG=$(PG)" | cmp -s - $@ || echo "PG=$(PG)" > $@
FORCE:

# The disposable-domain list is compiled in: conf/disposable-domains.txt,
# one lower-case domain a line (make update-lists refreshes it from npm).
disposable.inc: conf/disposable-domains.txt
	@if LC_ALL=C grep -qv '^[a-z0-9.-]*$$' $<; then echo "$<: unexpected characters"; exit 1; fi
	LC_ALL=C sort -u $< | sed 's/.*/"&",/' > $@

update-lists:
	contrib/lists/update-disposable.sh

# CPPFLAGS and LDFLAGS too, so a package build gets dpkg-buildflags' hardening.
outreach: outreach.c outreach.h disposable.inc .flavour
	$(CC) $(WARN) $(PG_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ outreach.c $(LIBS) $(PG_LIBS)

outreach-san: outreach.c outreach.h disposable.inc .flavour
	$(CC) $(WARN) $(PG_CFLAGS) -O1 -g $(SANFLAGS) -o $@ outreach.c $(LIBS) $(PG_LIBS)

tests/unit: tests/unit.c tests/unit-mail.c tests/unit-imap.c tests/unit-seq.c outreach.c outreach.h disposable.inc
	$(CC) $(WARN) -Wno-unused-function -O1 -g -DOR_TEST -DOR_NO_MAIN -o $@ tests/unit.c $(LIBS)

tests/unit-san: tests/unit.c tests/unit-mail.c tests/unit-imap.c tests/unit-seq.c outreach.c outreach.h disposable.inc
	$(CC) $(WARN) -Wno-unused-function -O1 -g $(SANFLAGS) -DOR_TEST -DOR_NO_MAIN -o $@ tests/unit.c $(LIBS)

# The suite runs on the PostgreSQL build (tests/e2e/pg-*.sh need it); the unit
# tests stay plain, and check that a plain build refuses a PostgreSQL config.
test: PG = 1
test: test-deps $(BIN) $(UNIT)
	OUTREACH_BIN=$(CURDIR)/$(BIN) OUTREACH_UNIT=$(CURDIR)/$(UNIT) SAN=$(SAN) tests/run.sh

# libFuzzer harnesses (clang): each tests/fuzz/fuzz-NAME.c includes outreach.c
# built for tests; `make fuzz` runs each for FUZZ_SECONDS on a copy of its seed
# corpus in tests/fuzz/corpus/NAME; crashes land in tests/fuzz/crashes/.
FUZZ_TARGETS = $(patsubst tests/fuzz/fuzz-%.c,%,$(wildcard tests/fuzz/fuzz-*.c))
FUZZ_SECONDS ?= 60
tests/fuzz/fuzz-%: tests/fuzz/fuzz-%.c outreach.c outreach.h disposable.inc
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -DOR_TEST -DOR_NO_MAIN -DOR_FUZZ \
	  -Wno-unused-function -o $@ $< $(LIBS)

fuzz: $(FUZZ_TARGETS:%=tests/fuzz/fuzz-%)
	@mkdir -p tests/fuzz/crashes
	@for t in $(FUZZ_TARGETS); do \
	  work=$$(mktemp -d); cp -r tests/fuzz/corpus/$$t/. $$work/ 2>/dev/null; \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  ./tests/fuzz/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=tests/fuzz/crashes/$$t- \
	    $$work 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done' ; rc=$$?; \
	  rm -rf $$work; \
	done; ! ls tests/fuzz/crashes/* >/dev/null 2>&1

# The long suites (CI runs short versions inside `make test`).
crashwalk: outreach
	CRASHWALK=full sh tests/crashwalk.sh

oomwalk: outreach
	OOMWALK=full sh tests/oomwalk.sh

# SOAK_HOSTS=2: two hosts on the PostgreSQL store (tests/soak-pg.sh), so the PG build
SOAK_HOSTS ?= 1
ifeq ($(SOAK_HOSTS),2)
soak: PG = 1
endif
soak: outreach
	if [ "$(SOAK_HOSTS)" = 2 ]; then SOAK_SECONDS=$${SOAK_SECONDS:-300} sh tests/soak-pg.sh; \
	else SOAK_SECONDS=$${SOAK_SECONDS:-300} sh tests/soak.sh; fi

bench:
	$(MAKE) clean-bench-bin && $(MAKE) CFLAGS="-O2 -DNDEBUG" outreach
	sh tests/bench.sh

clean-bench-bin:
	rm -f outreach

# Installs the Debian packages in WANT when missing (as root), else says how.
WANT = $(PKGS) $(if $(filter 1,$(PG)),$(PG_PKGS))
deps:
	@missing=$$(for p in $(WANT); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	  else echo "run: sudo apt-get install -y $$missing"; exit 1; fi; fi

# What make test needs: TEST_PKGS, and the npm peers of tests/peers (an SES
# emulator, Prism, an SMTP server library) pinned by its package-lock.json.
test-deps:
	@$(MAKE) -s deps WANT="$(TEST_PKGS)"
	@command -v npm >/dev/null || $(MAKE) -s deps WANT="nodejs npm"
	@[ tests/peers/node_modules/.package-lock.json -nt tests/peers/package-lock.json ] || \
	  (cd tests/peers && npm ci --no-audit --no-fund)

# The demo: a spool under spool/demo, the file provider, three senders and two
# clients; rendered messages land in spool/demo/outbox/*.eml.
demo: deps outreach
	@tests/demo.sh

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary, the man page, the
# sample config, the systemd units and the examples (cron, Prometheus, Grafana).
# SYSCONFDIR is /etc whatever PREFIX is: the binary reads
# /etc/outreach/outreach.conf unless told otherwise (-c, $$OUTREACH_CONF), so a
# config under /usr/local/etc would be one nobody reads.  UNITDIR is on systemd's
# search path for PREFIX /usr/local and /usr.  The config is created from the
# sample only when there is none; outreach.conf.example is always the new sample.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/outreach
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
CONFDIR     = $(SYSCONFDIR)/outreach
# The units and the cron file name the default paths; installed, they name these.
SUBST = sed -e 's|/usr/local/bin/outreach|$(BINDIR)/outreach|g' \
            -e 's|/etc/outreach/|$(CONFDIR)/|g' -e 's|/usr/local/share/doc/outreach|$(DOCDIR)|g'
DOCS  = README.md LICENSE spool/README:spool-README contrib/systemd/README.md:systemd/README.md \
        contrib/prometheus/README.md:prometheus/README.md \
        contrib/prometheus/outreach-rules.yml:prometheus/outreach-rules.yml \
        contrib/grafana/outreach.json:grafana/outreach.json $(wildcard doc/*.md)
UNITS = outreach.service outreach.timer

install: outreach
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(CONFDIR) \
	  $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR)/cron
	install -m 0755 outreach $(DESTDIR)$(BINDIR)/outreach
	install -m 0644 outreach.1 $(DESTDIR)$(MANDIR)/man1/outreach.1
	install -m 0644 conf/outreach.conf $(DESTDIR)$(CONFDIR)/outreach.conf.example
	@if [ -e $(DESTDIR)$(CONFDIR)/outreach.conf ]; then \
	  echo "$(DESTDIR)$(CONFDIR)/outreach.conf exists: left as it is (the new sample is outreach.conf.example)"; \
	else install -m 0644 conf/outreach.conf $(DESTDIR)$(CONFDIR)/outreach.conf; fi
	for u in $(UNITS); do $(SUBST) contrib/systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u.tmp && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && mv $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u; done
	$(SUBST) contrib/cron/outreach.cron > $(DESTDIR)$(DOCDIR)/cron/outreach.cron.tmp && \
	  chmod 0644 $(DESTDIR)$(DOCDIR)/cron/outreach.cron.tmp && \
	  mv $(DESTDIR)$(DOCDIR)/cron/outreach.cron.tmp $(DESTDIR)$(DOCDIR)/cron/outreach.cron
	for d in $(DOCS); do src=$${d%%:*}; dst=$${d#*:}; \
	  install -D -m 0644 $$src $(DESTDIR)$(DOCDIR)/$$dst; done

# Removes what install put; the config only if it is still the sample.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/outreach $(DESTDIR)$(MANDIR)/man1/outreach.1 \
	  $(DESTDIR)$(CONFDIR)/outreach.conf.example $(UNITS:%=$(DESTDIR)$(UNITDIR)/%)
	@if cmp -s conf/outreach.conf $(DESTDIR)$(CONFDIR)/outreach.conf; then \
	  rm -f $(DESTDIR)$(CONFDIR)/outreach.conf; rmdir $(DESTDIR)$(CONFDIR) 2>/dev/null || true; \
	elif [ -e $(DESTDIR)$(CONFDIR)/outreach.conf ]; then \
	  echo "$(DESTDIR)$(CONFDIR)/outreach.conf differs from the sample: left in place"; fi
	rm -f $(DESTDIR)$(DOCDIR)/cron/outreach.cron
	for d in $(DOCS); do rm -f $(DESTDIR)$(DOCDIR)/$${d#*:}; done
	cd $(DESTDIR)$(DOCDIR) 2>/dev/null && rmdir cron systemd prometheus grafana doc 2>/dev/null; \
	  rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true

# make deb: the Debian package, built by dpkg-buildpackage in a copy of the tree
# under build/deb/ (it writes its products into the parent folder), so the
# .deb lands in build/deb/ and nothing outside the repository is touched.
VERSION = $(shell sed -n 's/^\#define OR_VERSION "\(.*\)"/\1/p' outreach.h)
deb:
	@v=$$(dpkg-parsechangelog -S Version); [ "$$v" = "$(VERSION)" ] || \
	  { echo "debian/changelog says $$v, outreach.h says $(VERSION): add a changelog entry (dch -v $(VERSION))"; exit 1; }
	rm -rf build/deb && mkdir -p build/deb/outreach-$(VERSION)
	tar --exclude=./build --exclude=./.git --exclude=./tests/peers/node_modules -cf - . | \
	  tar -C build/deb/outreach-$(VERSION) -xf -
	cd build/deb/outreach-$(VERSION) && dpkg-buildpackage -us -uc -b
	@ls build/deb/*.deb

clean:
	rm -f outreach outreach-san tests/unit tests/unit-san disposable.inc .flavour tests/fuzz/fuzz-*[!.c]

.PHONY: FORCE all test test-deps deps demo clean update-lists fuzz crashwalk oomwalk soak bench clean-bench-bin \
        install uninstall deb
