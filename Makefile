# SPDX-License-Identifier: GPL-3.0-or-later
# A thin wrapper around CMake. The README's two commands are `make run` and
# `make test`; everything else here is for developers (docs/development.md).

JOBS ?= $(shell nproc)
BUILD ?= build
CMAKE_FLAGS ?=
PYTEST_ARGS ?=
FUZZ_SECONDS ?= 15

.PHONY: all run test deps release debug asan fuzz unit fuzz-smoke integration tidy format clean \
	lincheck-soak chaos-soak chaos-mons-soak

all: release

deps:
	@./packaging/install-deps.sh

# Configure-and-build helpers: $(1) = build dir, $(2) = cmake flags.
define cmake_build
	@mkdir -p $(1)
	@cmake -S . -B $(1) -Wno-dev $(2) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(1) -j $(JOBS) -- --no-print-directory
endef

release: deps
	$(call cmake_build,$(BUILD)/release,-DCMAKE_BUILD_TYPE=Release)

debug: deps
	$(call cmake_build,$(BUILD)/debug,-DCMAKE_BUILD_TYPE=Debug)

asan: deps
	$(call cmake_build,$(BUILD)/asan,-DCMAKE_BUILD_TYPE=Debug -DVS_SANITIZE=ON)

fuzz: deps
	$(call cmake_build,$(BUILD)/fuzz,-DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang \
		-DVS_FUZZ=ON -DVS_FUZZ_SECONDS=$(FUZZ_SECONDS))

# The main job: a whole cluster on this machine, served over NBD, until Ctrl-C.
# Its files live in $(BUILD)/demo, so a second `make run` finds the same data.
DEMO_ARGS ?=
run: release
	$(BUILD)/release/vstor/vstor demo --dir $(BUILD)/demo $(DEMO_ARGS)

unit: asan
	cd $(BUILD)/asan && ctest --output-on-failure -j $(JOBS) -L unit

fuzz-smoke: fuzz
	cd $(BUILD)/fuzz && ctest --output-on-failure -L fuzz

integration: asan
	VSTOR_BIN=$(CURDIR)/$(BUILD)/asan/vstor/vstor /usr/bin/python3 -m pytest -q integration $(PYTEST_ARGS)

# The metadata service's linearizability campaign (not in `make test`, which
# runs 2): LINCHECK_RUNS runs with kills and partitions, one summary line per
# run in $(BUILD)/lincheck-soak.jsonl (docs/metadata.md, "Linearizability").
LINCHECK_RUNS ?= 20
lincheck-soak: asan
	rm -f $(CURDIR)/$(BUILD)/lincheck-soak.jsonl
	META_LINCHECK_RUNS=$(LINCHECK_RUNS) \
	META_LINCHECK_SUMMARY=$(CURDIR)/$(BUILD)/lincheck-soak.jsonl \
	VSTOR_BIN=$(CURDIR)/$(BUILD)/asan/vstor/vstor /usr/bin/python3 -m pytest -q \
		integration/test_meta_lincheck.py $(PYTEST_ARGS); rc=$$?; \
	/usr/bin/python3 integration/lincheck.py --summary $(CURDIR)/$(BUILD)/lincheck-soak.jsonl \
		&& exit $$rc

# The chaos soak of the replicated data path (not in `make test`, which runs
# one 45 s run): CHAOS_RUNS runs of CHAOS_SECONDS of random faults each, seeds
# CHAOS_SEED, CHAOS_SEED+1, ... (integration/test_chaos.py, docs/data-path.md).
# Each run's logs stay in $(BUILD)/chaos-soak until the next soak; it runs a
# copy of the binaries, so a rebuild meanwhile does not break its restarts.
CHAOS_RUNS ?= 4
CHAOS_SECONDS ?= 240
CHAOS_SEED ?= $(shell date +%s)
CHAOS_MAX_DOWN ?= 1
CHAOS_MAX_MONS_DOWN ?= 1
# chaos_soak NAME,TEST: runs TEST on a copy of the binaries, logs in $(BUILD)/NAME.
define chaos_soak
	rm -rf $(BUILD)/$(1)-bin && mkdir -p $(BUILD)/$(1)-bin/osd
	cp $(BUILD)/asan/vstor/vstor $(BUILD)/$(1)-bin/
	cp $(BUILD)/asan/vstor/osd/osd_verify $(BUILD)/$(1)-bin/osd/
	VSTOR_CHAOS_RUNS=$(CHAOS_RUNS) VSTOR_CHAOS_SECONDS=$(CHAOS_SECONDS) \
	VSTOR_CHAOS_SEED=$(CHAOS_SEED) VSTOR_CHAOS_MAX_DOWN=$(CHAOS_MAX_DOWN) \
	VSTOR_CHAOS_MAX_MONS_DOWN=$(CHAOS_MAX_MONS_DOWN) \
	VSTOR_BIN=$(CURDIR)/$(BUILD)/$(1)-bin/vstor /usr/bin/python3 -m pytest -q \
		--timeout $$(( $(CHAOS_SECONDS) + 600 )) --basetemp $(CURDIR)/$(BUILD)/$(1) \
		integration/$(2) $(PYTEST_ARGS)
endef
chaos-soak: asan
	$(call chaos_soak,chaos-soak,test_chaos.py)

# The same with three mons on the OSD hosts, the faults hitting the raft group
# too (integration/test_chaos_mons.py; `make test` runs one 40 s run).
chaos-mons-soak: asan
	$(call chaos_soak,chaos-mons-soak,test_chaos_mons.py)

# Every test: unit tests and corpus replays under ASan+UBSan, a short run of
# every fuzzer, then the multi-process integration tests.
test: unit fuzz-smoke integration

tidy:
	/usr/bin/python3 tools/tidy.py .

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD)
