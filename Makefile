# Makefile for consumer-graph-worker (cgw).
#
#   make               release build: build/release/cgw
#   make asan          AddressSanitizer + UBSan build: build/asan/cgw and its test binaries
#   make check         the test command: installs what is missing, starts the local stack,
#                      builds with sanitizers, runs every test, prints "N passed, N failed"
#   make demo          the main job (see README)
#   make bench         end-to-end benchmark: 100 000 receipts, e2e vs ceiling (bench/e2e/README.md)
#   make bench-bolt    Bolt client vs the official Java and Python drivers (bench/bolt/README.md)
#   make chaos         the fault matrix against the local stack (scripts/chaos; CHAOS_ARGS="--records N")
#   make fuzz-<name>   build a libFuzzer target from tests/fuzz/<name>.c (clang); to run them
#                      for a time and keep the CPU-time ledger: scripts/fuzz --minutes N [name...]
#   make clean
#
# Layout: src/<subsystem>/*.c make libcgw.a; src/cmd/ holds the cgw binary's entry point;
# tests/unit/*_test.c and tests/integration/*_test.c are one test binary each.
# Protobuf-c code is generated from proto/ into build/gen at build time.

MODE       ?= release
CGW_CACHE  ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/cgw
RDKAFKA_VERSION := 2.8.0
RDKAFKA_PREFIX  ?= $(CGW_CACHE)/librdkafka-$(RDKAFKA_VERSION)
HIREDIS_VERSION := 1.2.0
HIREDIS_PREFIX  ?= $(CGW_CACHE)/hiredis-$(HIREDIS_VERSION)
VERSION    := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
GIT_REV    := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

B      := build/$(MODE)
GEN    := build/gen
CC     ?= gcc
PROTOC_C ?= protoc-c

WARN     := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
            -Wno-missing-field-initializers
CFLAGS_release := -O2 -g
CFLAGS_asan    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS_asan   := -fsanitize=address,undefined

PKGCONF  := PKG_CONFIG_PATH=$(RDKAFKA_PREFIX)/lib/pkgconfig pkg-config
PKGS     := libprotobuf-c libcurl openssl zlib yaml-0.1 jansson yajl libmicrohttpd expat
# librdkafka is linked statically: the 2.8 build lives in the cache, not in the system.
# Its own dependencies are linked as the system's shared libraries.
RDKAFKA_LIBS := $(RDKAFKA_PREFIX)/lib/librdkafka.a -lsasl2 -lzstd -llz4 -lcurl -lssl -lcrypto -lz -ldl -lrt
# hiredis 1.2 with hiredis_ssl (scripts/deps hiredis), static, from the cache; Debian 12's
# 0.14 (no TLS) is neither in the include path nor linked.
HIREDIS_LIBS := $(HIREDIS_PREFIX)/lib/libhiredis_ssl.a $(HIREDIS_PREFIX)/lib/libhiredis.a

CPPFLAGS += -D_GNU_SOURCE -Isrc -I$(GEN) -isystem $(RDKAFKA_PREFIX)/include -isystem $(HIREDIS_PREFIX)/include \
            -DCGW_VERSION='"$(VERSION)"' -DCGW_GIT_REV='"$(GIT_REV)"' \
            $(shell $(PKGCONF) --cflags $(PKGS))
CFLAGS   += -std=gnu11 -pthread $(WARN) $(CFLAGS_$(MODE))
LDFLAGS  += -pthread $(LDFLAGS_$(MODE))
LDLIBS   += $(HIREDIS_LIBS) $(RDKAFKA_LIBS) $(shell $(PKGCONF) --libs $(PKGS)) -lm

PROTOS      := $(shell find proto -name '*.proto' | sort)
PROTO_WKT   := /usr/include/google/protobuf/timestamp.proto
GEN_C       := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTOS)) $(GEN)/google/protobuf/timestamp.pb-c.c
GEN_H       := $(GEN_C:.c=.h)

LIB_SRC  := $(sort $(filter-out src/cmd/%,$(wildcard src/*/*.c)))
CMD_SRC  := $(sort $(wildcard src/cmd/*.c))
LIB_OBJ  := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRC)) $(patsubst build/gen/%.c,$(B)/obj/gen/%.o,$(GEN_C))
CMD_OBJ  := $(patsubst %.c,$(B)/obj/%.o,$(CMD_SRC))
TEST_SRC := $(sort $(wildcard tests/unit/*_test.c tests/integration/*_test.c))
TEST_BIN := $(patsubst tests/%.c,$(B)/tests/%,$(TEST_SRC))
# Helper programs of the Python tests (tests/tools/*.c), built beside the test binaries.
TOOL_BIN := $(patsubst tests/%.c,$(B)/tests/%,$(sort $(wildcard tests/tools/*.c)))
# Every fuzz target also builds as a corpus-replay test (tests/fuzz/replay.c): make check runs
# each target once over its committed seeds and regression cases, without libFuzzer.
FUZZ_SRC := $(sort $(filter-out tests/fuzz/replay.c tests/fuzz/record_seeds.c,$(wildcard tests/fuzz/*.c)))
REPLAY_BIN := $(patsubst tests/fuzz/%.c,$(B)/tests/fuzz/%_test,$(FUZZ_SRC))

.PHONY: all asan check demo bench bench-bolt chaos clean tests deps stack-up stack-down
.DEFAULT_GOAL := all
.SECONDARY: $(GEN_C) $(GEN_H)

all: $(B)/cgw
asan:
	@$(MAKE) --no-print-directory MODE=asan $(B:build/$(MODE)=build/asan)/cgw tests
tests: $(TEST_BIN) $(TOOL_BIN) $(REPLAY_BIN)

check:
	@bash scripts/check

demo:
	@bash scripts/demo

bench:
	@bash scripts/bench-e2e $(BENCH_ARGS)

bench-bolt:
	@bash scripts/bench-bolt $(BENCH_ARGS)

chaos:
	@bash scripts/chaos $(CHAOS_ARGS)

$(B)/cgw: $(CMD_OBJ) $(B)/libcgw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/libcgw.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(B)/tests/%: tests/%.c $(B)/libcgw.a $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libcgw.a $(LDLIBS)

$(B)/tests/fuzz/%_test: tests/fuzz/%.c tests/fuzz/replay.c $(B)/libcgw.a $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests -DFUZZ_CORPUS='"tests/fuzz/$*"' $(CFLAGS) $(LDFLAGS) -o $@ $< tests/fuzz/replay.c \
	  $(B)/libcgw.a $(LDLIBS)

$(B)/obj/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

# Generated code is compiled without our extra warnings: it is not ours to fix.
$(B)/obj/gen/%.o: $(GEN)/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -std=gnu11 $(CFLAGS_$(MODE)) -w -c -o $@ $<

$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	$(PROTOC_C) -Iproto -I/usr/include --c_out=$(GEN) $<

$(GEN)/google/protobuf/timestamp.pb-c.c $(GEN)/google/protobuf/timestamp.pb-c.h: $(PROTO_WKT)
	@mkdir -p $(GEN)
	$(PROTOC_C) -I/usr/include --c_out=$(GEN) $<

# libFuzzer targets: tests/fuzz/<name>.c linked against the library objects built by clang.
FUZZ_B := build/fuzz
fuzz-%: tests/fuzz/%.c
	@$(MAKE) --no-print-directory MODE=fuzz CC=clang \
	  CFLAGS_fuzz='-O1 -g -fsanitize=fuzzer-no-link,address,undefined' \
	  LDFLAGS_fuzz='-fsanitize=fuzzer,address,undefined' build/fuzz/libcgw.a
	clang $(CPPFLAGS) -std=gnu11 -O1 -g -fsanitize=fuzzer,address,undefined -o $(FUZZ_B)/$* $< \
	  $(FUZZ_B)/libcgw.a $(LDLIBS)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
