# certplane: the two commands.
#   make run    install what is missing, build, start the platform
#   make test   install what is missing, build, run every test (CTest)
SHELL := /bin/bash
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test test-main test-boringssl test-fuzz run format clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# Every test: the full suite against OpenSSL 3, libs/crypto against BoringSSL,
# and the fuzz targets for a bounded time. Prints one CTest summary per tree
# and fails if any failed.
test: deps
	@scripts/run-tests.sh

run: build
	@scripts/run.sh

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(BUILD)-boringssl $(BUILD)-fuzz
