# roam: one plain build.
#
#   make                 gcc build into build/
#   make SAN=1           clang ASan+UBSan build into build-san/
#   make fuzz            clang libFuzzer targets into build-fuzz/
#   make check           the whole test command (tests/run)
#
# Sources are found by folder, so adding a file to a layer needs no edit here:
#   src/arch/$(ARCH) src/sys src/image src/ckpt src/restore src/policy
#   src/net src/cluster           -> libroam.a
#   src/cli                       -> roam
#   src/daemon                    -> roamd
#   src/sim                       -> roam-sim
#   tests/subjects/*.c            -> test subjects (never sanitized: they are
#                                    the processes being checkpointed)
#   tests/unit/test_*.c           -> one cmocka program each
#   tests/fuzz/fuzz_*.c           -> one libFuzzer program each

ARCH    ?= x86_64
# "make V=1" shows the commands; by default one line per file.
ifeq ($(V),1)
Q :=
else
Q := @
endif
SAN     ?=
ifeq ($(SAN),1)
CC      := clang
BUILD   ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
CC      ?= cc
BUILD   ?= build
SANFLAGS :=
endif

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wno-unused-parameter -Wvla
CSTD    := -std=c11 -D_GNU_SOURCE
OPT     ?= -O2 -g
# -iquote: our "sys/ptrace.h" must not shadow <sys/ptrace.h>.
CPPFLAGS += -iquote src -iquote src/arch/$(ARCH) -iquote $(BUILD)/gen
CFLAGS  := $(CSTD) $(OPT) $(WARN) $(SANFLAGS) -pthread $(EXTRA_CFLAGS)
LDFLAGS := $(SANFLAGS) -pthread $(EXTRA_LDFLAGS)
# The libraries are linked statically: every roam command is a short-lived
# process, and each shared library costs it time at start-up.
# libgcrypt is the bulk channel's AES-256-OCB and libcrypto (OpenSSL) its
# GMAC (records in clear); only roamd and the tools that move images use them.
LIBS    := -Wl,-Bstatic -lprotobuf-c -llz4 -lzstd -lxxhash -lsodium -lgcrypt -lgpg-error \
	   -Wl,-Bdynamic -lcrypto -lm
# The CLI goes further: one static executable, libc included. roam run is
# a short-lived process that a shell starts for every job, and the dynamic
# loader (mapping libc, relocating, binding symbols) cost it 0.13 ms per start
# here, a quarter of a local exec of /bin/true (bench/run_spawn.sh). Not
# under the sanitizers, whose runtimes need the dynamic loader.
ifeq ($(SAN),1)
CLI_LIBS := $(LIBS)
else
CLI_LIBS := -static $(filter-out -Wl%,$(LIBS))
endif
# Where the architecture has one, the CLI starts at arch_cli_entry, which
# lets a plain roam run send its request (and often finish) before the C
# library starts (src/cli/run_early.c).
ifeq ($(ARCH),x86_64)
CLI_ENTRY := -Wl,-u,arch_cli_entry -Wl,-e,arch_cli_entry
endif

LIB_DIRS := src/arch/$(ARCH) src/sys src/image src/ckpt src/restore src/policy src/net src/cluster
LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
# Every layer may keep its schemas in src/LAYER/schema/*.proto; each file's
# generated code lands flat in $(BUILD)/gen, so proto file names must be unique.
PROTOS   := $(wildcard src/*/schema/*.proto)
GEN_C    := $(addprefix $(BUILD)/gen/,$(notdir $(PROTOS:.proto=.pb-c.c)))
GEN_H    := $(GEN_C:.c=.h)
LIB_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC)) $(GEN_C:.c=.o)

CLI_SRC  := $(wildcard src/cli/*.c)
D_SRC    := $(wildcard src/daemon/*.c)
SIM_SRC  := $(wildcard src/sim/*.c)
BINS     := $(if $(CLI_SRC),$(BUILD)/roam) $(if $(D_SRC),$(BUILD)/roamd) $(if $(SIM_SRC),$(BUILD)/roam-sim)

SUBJ_SRC := $(wildcard tests/subjects/*.c)
SUBJECTS := $(patsubst tests/subjects/%.c,$(BUILD)/subjects/%,$(SUBJ_SRC)) \
            $(if $(wildcard tests/subjects/memory.c),$(BUILD)/subjects/memory-static)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNITS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
BENCH_SRC := $(wildcard bench/*.c)
BENCHES  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

all: $(BINS) $(SUBJECTS) $(UNITS) $(BENCHES)

vpath %.proto $(sort $(dir $(PROTOS)))
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: %.proto
	@mkdir -p $(dir $@)
	@echo "  PROTO $<"
	$(Q)protoc-c --proto_path=$(dir $<) --c_out=$(BUILD)/gen $<

$(BUILD)/gen/%.pb-c.o: $(BUILD)/gen/%.pb-c.c
	@echo "  CC    $<"
	$(Q)$(CC) $(CPPFLAGS) $(CSTD) $(OPT) $(SANFLAGS) -w -c $< -o $@

$(BUILD)/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

# Files named *_avx2.c are built for AVX2; their callers check the CPU first.
$(BUILD)/%_avx2.o: CFLAGS += -mavx2

$(BUILD)/libroam.a: $(LIB_OBJ)
	@rm -f $@
	@echo "  AR    $@"
	$(Q)ar rcs $@ $^

$(BUILD)/roam: $(patsubst %.c,$(BUILD)/%.o,$(CLI_SRC)) $(BUILD)/libroam.a
	@echo "  LD    $@"
	$(Q)$(CC) $(LDFLAGS) $(CLI_ENTRY) $^ $(CLI_LIBS) -o $@

$(BUILD)/roamd: $(patsubst %.c,$(BUILD)/%.o,$(D_SRC)) $(BUILD)/libroam.a
	@echo "  LD    $@"
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

# roam-sim's own modules (all but main.c), for its unit tests and fuzzers too.
SIM_LIB_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(filter-out src/sim/main.c,$(SIM_SRC)))
$(BUILD)/libroamsim.a: $(SIM_LIB_OBJ)
	@echo "  AR    $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/roam-sim: $(patsubst %.c,$(BUILD)/%.o,$(SIM_SRC)) $(BUILD)/libroam.a
	@echo "  LD    $@"
	$(Q)$(CC) $(LDFLAGS) $^ $(LIBS) -o $@

# Subjects are plain programs: no sanitizer, no roam code.
SUBJ_CFLAGS := -std=gnu11 -O1 -g -Wall -Wextra -Werror -Wno-unused-parameter -pthread
$(BUILD)/subjects/%: tests/subjects/%.c tests/subjects/subject.h
	@mkdir -p $(dir $@)
	@echo "  CC    $@"
	$(Q)cc $(SUBJ_CFLAGS) $< -o $@ -lm
$(BUILD)/subjects/memory-static: tests/subjects/memory.c tests/subjects/subject.h
	@mkdir -p $(dir $@)
	@echo "  CC    $@"
	$(Q)cc $(SUBJ_CFLAGS) -static $< -o $@

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libroam.a $(BUILD)/libroamsim.a
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -MF $@.d $< $(BUILD)/libroamsim.a $(BUILD)/libroam.a $(LDFLAGS) -lcmocka $(LIBS) -o $@

$(BUILD)/bench/%: bench/%.c $(BUILD)/libroam.a
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -MF $@.d $< $(BUILD)/libroam.a $(LDFLAGS) $(LIBS) -o $@

# libFuzzer: the pure layers rebuilt with coverage, each target linked alone.
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang SAN= \
	  EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined" \
	  EXTRA_LDFLAGS="-fsanitize=address,undefined" build-fuzz/libroam.a build-fuzz/libroamsim.a
	@mkdir -p build-fuzz/fuzz
	@for f in $(FUZZ_SRC); do n=$$(basename $$f .c); \
	  echo "  FUZZ $$n"; \
	  clang $(subst $(BUILD)/gen,build-fuzz/gen,$(CPPFLAGS)) $(CSTD) -O1 -g $(WARN) \
	    -fsanitize=fuzzer,address,undefined $$f build-fuzz/libroamsim.a build-fuzz/libroam.a $(LIBS) -o build-fuzz/fuzz/$$n || exit 1; \
	done

check:
	tests/run

clean:
	rm -rf build build-san build-fuzz

.PHONY: all fuzz check clean
.SECONDARY:
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
