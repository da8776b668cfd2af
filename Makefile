# blackhole - see README.md.  Plain GNU make; no configure step.
#
#   make            bin/blackhole and lib/libblackhole.a
#   make test       build and run every test (unit + CLI), Criterion, then
#                   again under AddressSanitizer + UBSan (CI runs this)
#   make check      the suite once, without sanitizers (quick)
#   make sanitize   the suite under AddressSanitizer + UBSan (separate build dir)
#   make deps       install the Debian packages the build and tests need
#   make install    PREFIX=/usr/local: program, library, headers, man page
#   make bench      benchmarks (see bench/)
#   make fuzz       libFuzzer targets (clang), each run FUZZ_SECONDS (tests/fuzz/)
#   make valgrind   the test suite under valgrind (memcheck, leaks), VG_FILTER
#   make mpi        bin/blackhole-mpi (simulate on MPI; needs mpicc)

CC      ?= cc
PREFIX  ?= /usr/local
OPT     ?= -O2 -g
BUILD   ?= build
BINDIR  ?= bin
LIBDIR  ?= lib
SANFLAGS ?=

CPPFLAGS += -Iinclude -D_POSIX_C_SOURCE=200809L
CFLAGS  += -std=c11 -Wall -Wextra $(OPT) $(SANFLAGS)
LDFLAGS += $(SANFLAGS)
# GSL on OpenBLAS's CBLAS, not the reference gslcblas.
LDLIBS  += -lgsl -lopenblas -lcsv -linih -ljansson -lm -lpthread

LIB_SRC  := $(sort $(wildcard src/*.c))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/*.c tests/cli/*.c))
LIB_OBJ  := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:src/cli/%.c=$(BUILD)/obj/cli/%.o)
TEST_OBJ := $(TEST_SRC:tests/%.c=$(BUILD)/obj/tests/%.o)
HEADERS  := $(wildcard include/blackhole/*.h src/cli/*.h tests/*.h)

LIB  := $(LIBDIR)/libblackhole.a
PROG := $(BINDIR)/blackhole
TESTS := $(BUILD)/tests/run_tests

DEBIAN_PACKAGES := build-essential libgsl-dev libcsv-dev libcriterion-dev \
    libopenblas-dev libinih-dev libjansson-dev gnuplot-nox pkg-config \
    libopenmpi-dev openmpi-bin time

.PHONY: all test check sanitize deps install uninstall clean bench demo golden fuzz fuzz-build valgrind mpi

all: $(PROG) $(LIB)

# vmath and ran never read errno; without it GCC can vectorise or inline sqrt.
$(BUILD)/obj/vmath.o $(BUILD)/obj/ran.o: CFLAGS += -fno-math-errno

$(BUILD)/obj/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/cli/%.o: src/cli/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Isrc/cli $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/tests/%.o: tests/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(PROG): $(CLI_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LDLIBS)

$(TESTS): $(TEST_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(TEST_OBJ) $(LIB) -lcriterion $(LDLIBS)

# The suite runs from the repository root (fixtures are found relative to
# it) and finds the program under test through BH_BIN.
# `make test` (the README's and CI's test command) runs the whole suite
# twice: as built, then under AddressSanitizer + UBSan.  `make check` is the
# first half alone (the quick loop while developing).
test: check sanitize

# Tests run OpenBLAS single-threaded (as the program does by default):
# results do not depend on the core count, and no BLAS thread pool is
# started in every process the CLI tests spawn.
# The allocation counter (tests/alloc_count.c, an LD_PRELOAD library) only
# without sanitizers, which interpose malloc themselves.
ALLOC_SO := $(if $(SANFLAGS),,$(BUILD)/tests/alloc_count.so)
$(BUILD)/tests/alloc_count.so: tests/alloc_count.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -O2 -shared -fPIC -o $@ $<

check: $(TESTS) $(PROG) $(ALLOC_SO)
	OPENBLAS_NUM_THREADS=1 $(TEST_ENV) BH_BIN=$(abspath $(PROG)) \
	    BH_ALLOC_SO=$(if $(ALLOC_SO),$(abspath $(ALLOC_SO))) $(abspath $(TESTS)) --jobs 2

# Rewrite the golden CLI outputs after a deliberate change (review the diff).
golden: $(PROG)
	@grep -v '^#' tests/cli/golden/cases.txt | grep . | while IFS='|' read -r name args; do \
	    eval "$(PROG) $$args" > tests/cli/golden/$$name.out || true; done

# Criterion runs each test in a child whose exit status it does not pass
# on, so the children's sanitizer reports are caught in the log.  The
# runner's own 48-byte allocation at exit is suppressed (tests/lsan.supp;
# a short allocation context keeps that suppression from matching leaks in
# project code called from a test).
sanitize:
	@mkdir -p build/san
	@{ $(MAKE) check BUILD=build/san BINDIR=build/san/bin LIBDIR=build/san/lib \
	    TEST_ENV="LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):malloc_context_size=2:print_suppressions=0" \
	    OPT="-O1 -g -fno-omit-frame-pointer" \
	    SANFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined"; \
	    echo $$? > build/san/rc; } 2>&1 | tee build/san/test.log; \
	rc=$$(cat build/san/rc); \
	if grep -q 'ERROR: LeakSanitizer\|ERROR: AddressSanitizer\|runtime error:' build/san/test.log; then \
	    echo "sanitize: the sanitizers reported errors (build/san/test.log)"; exit 1; fi; \
	exit $$rc

deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEBIAN_PACKAGES)

install: $(PROG) $(LIB)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
	    $(DESTDIR)$(PREFIX)/include/blackhole $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(PROG) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/blackhole/*.h $(DESTDIR)$(PREFIX)/include/blackhole/
	install -m 644 man/blackhole.1 $(DESTDIR)$(PREFIX)/share/man/man1/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/blackhole $(DESTDIR)$(PREFIX)/lib/libblackhole.a \
	    $(DESTDIR)$(PREFIX)/share/man/man1/blackhole.1
	rm -rf $(DESTDIR)$(PREFIX)/include/blackhole

# The main job on the shipped data (README quick start): the whole study,
# end to end, into $(DEMO_OUT)/ (report.md, tables, figures, scorecard).
DEMO_OUT ?= out
demo: $(PROG)
	$(PROG) replicate --study analysis/sabnis2013.ini --out $(DEMO_OUT)

# Fuzzing (tests/fuzz/): libFuzzer + ASan + UBSan, clang only.  Each target
# runs FUZZ_SECONDS on its seed corpus tests/fuzz/corpus/<target>/ (new
# inputs found go to build/fuzz/corpus/<target>/, the seeds stay small);
# crashes are written to tests/fuzz/crashes/<target>/, which `make test`
# replays (tests/cli/test_bad_inputs.c).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   ?= -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -g -O1
FUZZ_TARGETS := csv formula fit
FUZZ_LIBSRC  := $(LIB_SRC:src/%.c=%)
FUZZ_BINS    := $(FUZZ_TARGETS:%=build/fuzz/fuzz_%)
FUZZ_DEPS    := $(FUZZ_LIBSRC:%=src/%.c) tests/fuzz/fuzz_targets.c tests/fuzz/fuzz_targets.h

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DEPS) $(HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) -std=c11 -Wall -Wextra $(CPPFLAGS) -Itests/fuzz $(FUZZ_FLAGS) -o $@ $< \
	    tests/fuzz/fuzz_targets.c $(FUZZ_LIBSRC:%=src/%.c) $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p build/fuzz/corpus/$$t tests/fuzz/crashes/$$t; \
	    echo "== fuzz_$$t for $(FUZZ_SECONDS) s"; \
	    OPENBLAS_NUM_THREADS=1 build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	        -max_len=8192 -print_final_stats=1 -artifact_prefix=tests/fuzz/crashes/$$t/ \
	        -dict=tests/fuzz/$$t.dict build/fuzz/corpus/$$t tests/fuzz/corpus/$$t \
	        || { echo "fuzz_$$t: crash saved in tests/fuzz/crashes/$$t/"; exit 1; }; \
	done

# The suite under valgrind (memcheck: invalid accesses, uninitialised
# values, definite and indirect leaks).  Criterion runs each test in a
# forked worker whose valgrind exit status it does not pass on, and the CLI
# tests exec the program (traced with --trace-children; shells and system
# tools are skipped), so every process writes its own log and the target
# fails when any log reports an error (a log that ends at an exec of a
# skipped program has no summary and is not an error).  VG_FILTER narrows the run (a
# Criterion --filter glob, e.g. VG_FILTER='lm*/*').  Valgrind has no x87
# 80-bit arithmetic (long double runs in double precision), so tests whose
# accuracy rests on it are excluded by default (lm_nist; tests/unit/
# test_robust.c relaxes itself when BH_VALGRIND is set).  Time: see README
# "Testing".
VALGRIND    ?= valgrind
VG_FILTER   ?= !(lm_nist)/*
VG_LOGS     ?= build/valgrind
VG_FLAGS    ?= --leak-check=full --errors-for-leak-kinds=definite,indirect \
               --error-exitcode=1 --trace-children=yes \
               --trace-children-skip='/bin/*,/usr/bin/*,/usr/sbin/*,/sbin/*' \
               --suppressions=tests/valgrind.supp --log-file=$(VG_LOGS)/%p.log
valgrind: $(TESTS) $(PROG)
	rm -rf $(VG_LOGS) && mkdir -p $(VG_LOGS)
	OPENBLAS_NUM_THREADS=1 BH_VALGRIND=1 BH_BIN=$(abspath $(PROG)) $(VALGRIND) $(VG_FLAGS) $(abspath $(TESTS)) --jobs 1 \
	    --filter '$(VG_FILTER)'; st=$$?; \
	bad=$$(grep -l 'ERROR SUMMARY: [1-9]' $(VG_LOGS)/*.log); \
	echo "valgrind: $$(ls $(VG_LOGS) | wc -l) processes checked, logs in $(VG_LOGS)/"; \
	if [ -n "$$bad" ]; then for f in $$bad; do echo "== $$f"; cat $$f; done; \
	    echo "valgrind: errors in $$(echo $$bad | wc -w) process(es)"; exit 1; fi; \
	exit $$st

bench: $(PROG)
	bench/run.sh

# `mpirun -np K bin/blackhole-mpi simulate ...` (src/mpi/): the library and
# the CLI objects (without main.o) linked with the MPI driver by mpicc.
MPICC   ?= mpicc
MPI_PROG := $(BINDIR)/blackhole-mpi
MPI_CLI_OBJ := $(filter-out $(BUILD)/obj/cli/main.o,$(CLI_OBJ))
mpi: $(MPI_PROG)

$(MPI_PROG): src/mpi/mpi_main.c $(MPI_CLI_OBJ) $(LIB) $(HEADERS)
	@mkdir -p $(dir $@)
	$(MPICC) $(CPPFLAGS) -Isrc/cli $(CFLAGS) $(LDFLAGS) -o $@ src/mpi/mpi_main.c \
	    $(MPI_CLI_OBJ) $(LIB) $(LDLIBS)

clean:
	rm -rf build bin lib
