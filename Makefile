# Tempo: the two commands of the README, and a few more.
#   make          build into build/ (binary build/tempo)
#   make demo     install what is missing, build, run the main job on the embedded default
#   make check    install what is missing, build, run every test (Release, then ASan/UBSan)
JOBS ?= $(shell nproc)
BUILD ?= build
SAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30
CMAKE_FLAGS ?=

.PHONY: all deps build demo check test test-asan test-fuzz bench format clean

all: build

deps:
	scripts/install-deps

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

demo: deps build
	$(BUILD)/tempo train --model cnn --dataset fashion-mnist --mode tempo --epochs 1 --privacy-report

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

test-asan:
	cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTEMPO_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(SAN_BUILD) -j$(JOBS)
	cd $(SAN_BUILD) && LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp ctest --output-on-failure -j$(JOBS) -LE slow

# The worker's request decoder under libFuzzer (clang, ASan/UBSan) for FUZZ_SECONDS; crashes fail.
test-fuzz:
	JOBS=$(JOBS) fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_BUILD)

check:
	TEMPO_WITH_FUZZ=1 scripts/install-deps
	$(MAKE) test
	$(MAKE) test-asan
	$(MAKE) test-fuzz

bench: build
	bench/run-all.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)
