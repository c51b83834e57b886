# certplane: the two commands.
#   make run    install what is missing, build, start the platform
#   make test   install what is missing, build, run every test (CTest)
SHELL := /bin/bash
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# Paths relative to the checkout in the compiler cache, so that another
# clone (the make-run test's) reuses what this one compiled.
export CCACHE_BASEDIR ?= $(CURDIR)
export CCACHE_NOHASHDIR ?= 1

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

# The platform's binaries only (not the tests and benchmarks), then start it.
# DB=postgresql://... uses PostgreSQL instead of the SQLite default.
PLATFORM_TARGETS = certplane_vault certplane_inventory certplane_issuance \
	certplane_gateway certplane_command certplane_admin
run: configure
	@cmake --build $(BUILD) -j $(JOBS) --target $(PLATFORM_TARGETS)
	@BUILD=$(BUILD) DB="$(DB)" scripts/run.sh

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(BUILD)-boringssl $(BUILD)-fuzz
