# Probabilistic curtailment forecaster -- one non-recursive Makefile.
#
# Layout convention (so adding a file never needs an edit here):
#   D/pcf-NAME.c      a program: its main() becomes bin/pcf-NAME
#   D/*.c (others)    the library of directory D: build/VARIANT/libD.a
#   tests/*.c         one Criterion binary, build/VARIANT/test-pcf
#   bench/bench_*.c   one benchmark program each, run by `make bench`
#   tests/fuzz/fuzz_*.c  libFuzzer targets, built with clang (`make fuzz`)
# with D in common (shared by every program), forecaster, ingest and sql.
# Generated code (protoc-c output, embedded migrations) lives in build/gen.
#
# VARIANT=release (default, programs in bin/) or VARIANT=asan (Address- and
# UndefinedBehaviorSanitizer, everything under build/asan/).

SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c

VARIANT ?= release
CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=

BUILD    ?= build
GEN      := $(BUILD)/gen
OBJ      := $(BUILD)/$(VARIANT)
ifeq ($(VARIANT),asan)
  OPTFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  BINDIR   ?= $(OBJ)/bin
else ifeq ($(VARIANT),fuzz)
  CC       := clang
  OPTFLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
  BINDIR   ?= $(OBJ)/bin
else
  OPTFLAGS := -O2 -g
  BINDIR   ?= bin
endif

INCLUDES := -Icommon -Iforecaster -Iingest -Isql -I$(GEN) \
            -I/usr/include/suitesparse -I/usr/include/postgresql -I/usr/include/cairo
CFLAGS   ?=
CFLAGS   += -std=c11 -Wall -Wextra -Werror -D_DEFAULT_SOURCE -D_GNU_SOURCE \
            $(OPTFLAGS) $(INCLUDES) -MMD -MP
LDLIBS   := -lpq -lzmq -lprotobuf-c -lgsl -lopenblas -lklu -lamd -lcolamd -lbtf \
            -lsuitesparseconfig -lcurl -ljansson -linih -lcairo -lmicrohttpd -lm -lpthread

# Static link order: a library before the ones it uses.
LIBDIRS  := forecaster ingest sql common
GEN_SRC  := $(GEN)/pcf.pb-c.c $(GEN)/migrations.c
GEN_HDR  := $(GEN)/pcf.pb-c.h $(GEN)/migrations.h $(GEN)/version.h

# The version each run records (run.software_version) and the heartbeat
# carries: the release, and the commit when built from a git checkout, so a
# figure can be traced to the code that made it.
PCF_RELEASE := 0.5.0
PCF_COMMIT  := $(shell git rev-parse --short HEAD 2>/dev/null)
PCF_VERSION := $(PCF_RELEASE)$(if $(PCF_COMMIT),+g$(PCF_COMMIT))

lib_src   = $(filter-out $(1)/pcf-%.c,$(wildcard $(1)/*.c))
lib_objs  = $(patsubst %.c,$(OBJ)/%.o,$(call lib_src,$(1)))
COMMON_OBJS := $(call lib_objs,common) $(patsubst $(GEN)/%.c,$(OBJ)/gen/%.o,$(GEN_SRC))
LIBS     := $(foreach d,$(LIBDIRS),$(OBJ)/lib$(d).a)

PROG_SRC := $(foreach d,$(LIBDIRS),$(wildcard $(d)/pcf-*.c))
PROGS    := $(patsubst %.c,$(BINDIR)/%,$(notdir $(PROG_SRC)))
TEST_SRC := $(wildcard tests/*.c)
TEST_BIN := $(OBJ)/test-pcf
BENCH_SRC := $(wildcard bench/bench_*.c)
BENCH_BIN := $(patsubst bench/%.c,$(OBJ)/bench/%,$(BENCH_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

.PHONY: all check test asan-test fuzz fuzz-smoke bench demo soak install clean deps
all: $(PROGS)

deps:
	@deploy/install-deps.sh -q

# ---- generated code --------------------------------------------------------
$(GEN)/pcf.pb-c.c $(GEN)/pcf.pb-c.h &: proto/pcf.proto
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) proto/pcf.proto

$(GEN)/migrations.c $(GEN)/migrations.h &: $(wildcard sql/*.sql) sql/embed.sh
	@mkdir -p $(GEN)
	sh sql/embed.sh $(GEN) sql/*.sql

# Rewritten only when the version changes, so a new commit rebuilds just the
# programs that print it.
$(GEN)/version.h: FORCE
	@mkdir -p $(GEN)
	@echo '#define PCF_VERSION "$(PCF_VERSION)"' > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

.PHONY: FORCE
FORCE:

# ---- objects and libraries -------------------------------------------------
$(OBJ)/%.o: %.c | $(GEN_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# protoc-c output is not ours to warn about beyond what it guarantees.
$(OBJ)/gen/%.o: $(GEN)/%.c | $(GEN_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Wno-unused-parameter -c $< -o $@

$(OBJ)/libcommon.a: $(COMMON_OBJS)
	@rm -f $@
	ar rcs $@ $^

define LIB_RULE
$(OBJ)/lib$(1).a: $(call lib_objs,$(1))
	@mkdir -p $$(dir $$@); rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach d,sql ingest forecaster,$(eval $(call LIB_RULE,$(d))))

# ---- programs --------------------------------------------------------------
define PROG_RULE
$(BINDIR)/$(basename $(notdir $(1))): $(OBJ)/$(basename $(1)).o $(LIBS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CFLAGS) -o $$@ $$< $(LIBS) $$(LDLIBS)
endef
$(foreach p,$(PROG_SRC),$(eval $(call PROG_RULE,$(p))))

$(TEST_BIN): $(patsubst %.c,$(OBJ)/%.o,$(TEST_SRC)) $(LIBS)
	$(CC) $(CFLAGS) -o $@ $(patsubst %.c,$(OBJ)/%.o,$(TEST_SRC)) $(LIBS) -lcriterion $(LDLIBS)

$(OBJ)/bench/%: $(OBJ)/bench/%.o $(LIBS)
	$(CC) $(CFLAGS) -o $@ $< $(LIBS) $(LDLIBS)
# bench_publish times libsodium's boxes on their own (what CurveZMQ costs per frame)
$(OBJ)/bench/bench_publish: LDLIBS += -lsodium

# ---- tests -----------------------------------------------------------------
# `make check`: packages, release build, the suite against a private
# PostgreSQL, the same suite under ASan+UBSan, then a short fuzzing pass.
check: deps
	$(MAKE) all $(TEST_BIN)
	@mkdir -p $(BUILD)
	PCF_BINDIR=$(BINDIR) tests/run.sh $(TEST_BIN) 2>&1 | tee $(BUILD)/check-release.log
	$(MAKE) VARIANT=asan asan-test 2>&1 | tee $(BUILD)/check-asan.log
	$(MAKE) fuzz-smoke
	@echo "check: release build:"; grep -h 'Synthesis' $(BUILD)/check-release.log
	@echo "check: ASan+UBSan build:"; grep -h 'Synthesis' $(BUILD)/check-asan.log

test: all $(TEST_BIN)
	PCF_BINDIR=$(BINDIR) tests/run.sh $(TEST_BIN)

asan-test: $(PROGS) $(TEST_BIN)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  PCF_BINDIR=$(BINDIR) tests/run.sh $(TEST_BIN)

FUZZ_SECONDS ?= 600
fuzz-smoke:
	$(MAKE) VARIANT=fuzz fuzz-build
	tests/fuzz/run.sh $(BUILD)/fuzz/fuzz/fuzz 10

fuzz:
	$(MAKE) VARIANT=fuzz fuzz-build
	tests/fuzz/run.sh $(BUILD)/fuzz/fuzz/fuzz $(FUZZ_SECONDS)

.PHONY: fuzz-build
fuzz-build: $(patsubst tests/fuzz/%.c,$(OBJ)/fuzz/%,$(FUZZ_SRC))

$(OBJ)/fuzz/%: $(OBJ)/tests/fuzz/%.o $(LIBS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(LIBS) $(LDLIBS)

# ---- benchmarks, demo, install ---------------------------------------------
bench: deps all $(BENCH_BIN)
	bench/run.sh $(OBJ)/bench

demo: deps all
	deploy/demo.sh

# `make soak`: the service under load and faults (tests/soak, docs/soak.md);
# minutes, so not part of `make check`.
SOAK_SECONDS ?= 300
SOAK_SEED    ?= 1
soak: deps all
	SOAK_SECONDS=$(SOAK_SECONDS) SOAK_SEED=$(SOAK_SEED) PCF_BINDIR=$(BINDIR) tests/soak/soak.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/pcf
	install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	if [ -f deploy/pcf.conf ]; then install -m 644 deploy/pcf.conf $(DESTDIR)$(PREFIX)/share/pcf/pcf.conf.example; fi

clean:
	rm -rf build bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
