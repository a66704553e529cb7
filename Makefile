# posta - top-level Makefile (GNU make, no autotools)
#
#   make                 build every program into build/
#   make check           build and run all tests; ends with "N passed, N failed"
#   make check SANITIZE=1  the same with ASan + UBSan (in build-san/)
#   make fuzz            libFuzzer targets with clang (in build-fuzz/)
#   make fuzz-run SECONDS=600   run each fuzzer for real
#   make run | start | stop     the sandbox in ./run/ (see README.md)
#   make install DESTDIR=...    FHS install

CC	?= cc
ifeq ($(origin CC),default)
CC	= gcc
endif
FUZZCC	?= clang-14
PKGCONF	?= pkg-config

PREFIX	?= /usr
SYSCONFDIR ?= /etc/posta
LIBEXECDIR ?= $(PREFIX)/lib/posta
SBINDIR	?= $(PREFIX)/sbin
MANDIR	?= $(PREFIX)/share/man
SPOOLDIR ?= /var/spool/posta
MAILDIR	?= /var/lib/posta/mail

ifdef SANITIZE
BUILD	?= build-san
OPT	:= -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	   -fno-sanitize-recover=undefined
SANLD	:= -fsanitize=address,undefined
else
BUILD	?= build
OPT	:= -O2 -g -D_FORTIFY_SOURCE=2
SANLD	:=
endif

DEPS_STAMP := $(BUILD)/.deps-ok
CONFIG_MK  := $(BUILD)/config.mk

WARN	:= -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wno-unused-parameter
HARDEN	:= -fstack-protector-strong -fPIE
CPPFLAGS += -D_GNU_SOURCE -Ilib \
	   -DPOSTA_SYSCONFDIR='"$(SYSCONFDIR)"' \
	   -DPOSTA_LIBEXECDIR='"$(LIBEXECDIR)"' \
	   -DPOSTA_SPOOLDIR='"$(SPOOLDIR)"' \
	   -DPOSTA_MAILDIR='"$(MAILDIR)"'
ALL_CFLAGS = -std=c11 -pthread $(WARN) $(OPT) $(HARDEN) $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = -pthread -pie -Wl,-z,relro,-z,now $(SANLD) $(LDFLAGS)
LIBS	= $(PKG_LIBS) -lunbound -ldb -lcrypt -lresolv

all: programs

# Dependencies: install what is missing (tools/install-deps), then record
# the compiler flags pkg-config gives.  Included, so make rebuilds it first.
$(DEPS_STAMP): tools/install-deps
	@mkdir -p $(@D)
	@./tools/install-deps
	@touch $@

$(CONFIG_MK): $(DEPS_STAMP)
	@mkdir -p $(@D)
	@{ echo "PKG_CFLAGS := $$($(PKGCONF) --cflags libssl libcrypto ldap lber libsystemd cmocka)"; \
	   echo "PKG_LIBS := $$($(PKGCONF) --libs libssl libcrypto ldap lber libsystemd)"; \
	   echo "CMOCKA_LIBS := $$($(PKGCONF) --libs cmocka)"; } > $@

ifeq ($(filter clean distclean,$(MAKECMDGOALS)),)
include $(CONFIG_MK)
endif

# ---- the library --------------------------------------------------------
LIB_SRC	:= $(wildcard lib/*.c)
LIB_OBJ	:= $(LIB_SRC:%.c=$(BUILD)/%.o)
LIBPOSTA := $(BUILD)/libposta.a

# Objects depend on the flags too: a build with other -D paths (make
# install PREFIX=...) or other options recompiles what it must.
FLAGS_STAMP := $(BUILD)/.flags
ifeq ($(filter clean distclean,$(MAKECMDGOALS)),)
ifneq ($(file < $(FLAGS_STAMP)),$(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS))
$(shell mkdir -p $(BUILD))
$(file > $(FLAGS_STAMP),$(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS))
endif
endif

$(BUILD)/%.o: %.c $(CONFIG_MK) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(LIBPOSTA): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

# ---- programs: one directory each (tools/ holds several) -----------------
PROG_DIRS := master smtpd qmgr local smtp imapd proxyd filterd \
	     tools/posta tools/sendmail
PROG_DIRS := $(foreach d,$(PROG_DIRS),$(if $(wildcard $(d)/*.c),$(d)))
PROGS	:= $(foreach d,$(PROG_DIRS),$(BUILD)/bin/$(notdir $(d)))

define prog_rule
$(BUILD)/bin/$(notdir $(1)): $(patsubst %.c,$(BUILD)/%.o,$(wildcard $(1)/*.c)) $(LIBPOSTA)
	@mkdir -p $$(@D)
	$$(CC) $$(ALL_CFLAGS) $$(ALL_LDFLAGS) -o $$@ $$^ $$(LIBS)
endef
$(foreach d,$(PROG_DIRS),$(eval $(call prog_rule,$(d))))

programs: $(PROGS) $(if $(filter tools/sendmail,$(PROG_DIRS)),$(BUILD)/bin/mailq)

$(BUILD)/bin/mailq: $(BUILD)/bin/sendmail
	ln -sf sendmail $@

# ---- tests ----------------------------------------------------------------
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
HELPER_SRC := $(wildcard tests/helpers/*.c)
HELPER_BIN := $(HELPER_SRC:tests/helpers/%.c=$(BUILD)/tests/helpers/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/fuzz_%.c=%)
FUZZ_REPLAY := $(FUZZ_NAMES:%=$(BUILD)/tests/replay_%)

$(BUILD)/tests/%: tests/unit/%.c $(LIBPOSTA) $(CONFIG_MK)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIBPOSTA) $(LIBS) $(CMOCKA_LIBS)

$(BUILD)/tests/helpers/%: tests/helpers/%.c $(LIBPOSTA) $(CONFIG_MK)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIBPOSTA) $(LIBS)

# Each fuzz target also builds with the normal compiler and a small driver
# that replays its corpus: that is the regression run in make check.
$(BUILD)/tests/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(LIBPOSTA) $(CONFIG_MK)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< tests/fuzz/replay.c $(LIBPOSTA) $(LIBS)

test-programs: programs $(UNIT_BIN) $(HELPER_BIN) $(FUZZ_REPLAY)

check: test-programs
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) ./tests/run

# ---- fuzzing with libFuzzer (clang) -----------------------------------------
FUZZ_BUILD := build-fuzz
FUZZ_FLAGS = -std=c11 -pthread -g -O1 \
	      -fsanitize=fuzzer-no-link,address,undefined $(CPPFLAGS) $(WARN)
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)

$(FUZZ_BUILD)/%.o: %.c $(CONFIG_MK)
	@mkdir -p $(@D)
	$(FUZZCC) $(FUZZ_FLAGS) $(PKG_CFLAGS) -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJ)
	$(FUZZCC) $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LIBS)

fuzz: $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)

SECONDS ?= 60
fuzz-run: fuzz
	@for n in $(FUZZ_NAMES); do \
		mkdir -p $(FUZZ_BUILD)/corpus/$$n; \
		echo "fuzz $$n for $(SECONDS)s"; \
		$(FUZZ_BUILD)/fuzz_$$n -max_total_time=$(SECONDS) \
		    -artifact_prefix=$(FUZZ_BUILD)/ \
		    $(FUZZ_BUILD)/corpus/$$n tests/fuzz/corpus/$$n || exit 1; \
	done

# ---- the sandbox (DESIGN.md: make run / start / stop) ----------------------
RUNDIR	:= $(CURDIR)/run

run: programs
	@./tools/sandbox run $(RUNDIR) $(CURDIR)/$(BUILD)/bin
start: programs
	@./tools/sandbox start $(RUNDIR) $(CURDIR)/$(BUILD)/bin
stop:
	@./tools/sandbox stop $(RUNDIR) $(CURDIR)/$(BUILD)/bin

# ---- install ------------------------------------------------------------------
install: programs
	./tools/install-tree "$(DESTDIR)" "$(BUILD)/bin" \
	    "$(LIBEXECDIR)" "$(SBINDIR)" "$(SYSCONFDIR)" "$(MANDIR)" \
	    "$(SPOOLDIR)" "$(MAILDIR)" "$(PREFIX)"

clean:
	rm -rf build build-san build-fuzz

distclean: clean
	rm -rf run

.PHONY: all programs test-programs check fuzz fuzz-run run start stop \
	install clean distclean
.SECONDARY:

-include $(LIB_OBJ:.o=.d) $(wildcard $(BUILD)/*/*.d $(BUILD)/tools/*/*.d) \
	$(wildcard $(FUZZ_BUILD)/lib/*.d)
