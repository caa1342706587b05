# edgedepth — `make run` starts the daemon on its built-in default (simulated stereo rig,
# SGBM depth, embedded MQTT broker); `make test` runs every test. `make help` lists all.

GO       ?= go
BIN      := bin/edgedepth
CONFIG   ?= configs/default.yaml
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X main.version=$(VERSION)
# Debian 12 packages: to build and run, and in addition to test.
RUN_DEBS  := pkg-config libopencv-dev libavcodec-dev libavutil-dev libswscale-dev libopenblas-dev
TEST_DEBS := $(RUN_DEBS) mosquitto mosquitto-clients ffmpeg opencv-doc systemd python3-torch python3-torchvision \
	gstreamer1.0-tools gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi \
	gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav

.PHONY: help run build build-jetson test bench fuzz vet deps test-deps onnxruntime clean

# ONNX Runtime for jetson/trt's tests and benchmarks: the CPU build (libonnxruntime.so.1)
# that the npm package onnxruntime-node ships for linux x64 and arm64; Debian has none.
# Fetched with `npm pack` + tar (its install script, which downloads more, never runs)
# into a git-ignored folder, checked against the SHA-256 below, once.
ORT_VERSION      := 1.24.1
ORT_ARCH         := $(shell uname -m | sed -e 's/^x86_64$$/x64/' -e 's/^aarch64$$/arm64/')
ORT_LIB          := third_party/onnxruntime/$(ORT_ARCH)/libonnxruntime.so.1
ORT_SHA256_x64   := 53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4
ORT_SHA256_arm64 := 7954e8bdedb497f830c6a679e818d98399b7f4d81ade1126c3e0be74d28111ab
# make test and make bench hand it to the tests, which then fail (not skip) without it.
ORT_ENV          := EDGEDEPTH_ONNXRUNTIME_LIB=$(CURDIR)/$(ORT_LIB)

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

run: deps build ## build and run the daemon on configs/default.yaml (CONFIG=file to change; Ctrl-C stops it)
	./$(BIN) run --config $(CONFIG)

build: ## build bin/edgedepth
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/edgedepth

# A Jetson build is native: edgedepth links OpenCV and libavcodec through cgo, and
# Debian's libopencv-dev cannot be installed for arm64 beside amd64 (it is not
# multi-arch), so an x86 machine has no arm64 OpenCV to cross-link. The CUDA and
# ONNX Runtime libraries are loaded at run time (dlopen), so nothing of JetPack is
# needed to build.
build-jetson: ## on the Jetson (arm64): build bin/edgedepth natively, then say how to check it
	@[ "$$(uname -m)" = aarch64 ] || { echo "make build-jetson runs on the Jetson itself (arm64), or in an arm64 container of its Ubuntu: an x86 machine has no arm64 OpenCV to link (see the Makefile). Copy the source to the board and run it there." >&2; exit 1; }
	@[ -e /etc/nv_tegra_release ] || echo "warning: no /etc/nv_tegra_release: this arm64 machine is not a Jetson (building anyway)" >&2
	@DEBS="$(RUN_DEBS)" sh scripts/debs.sh
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/edgedepth
	@echo "built $(BIN) for $$(uname -m); check the board with: $(BIN) doctor"

# Packages are tested one at a time (-p 1): the end-to-end tests measure real-time
# behaviour (resume within 5 s, a camera 100 ms late) that a CPU-heavy package testing
# beside them on a 2-core machine would distort.
test: test-deps onnxruntime ## run all unit, end-to-end and import-rule tests
	$(GO) vet ./...
	$(ORT_ENV) $(GO) test -p 1 -count=1 -timeout 30m ./...

bench: test-deps onnxruntime ## run the benchmarks (figures in the README)
	$(ORT_ENV) $(GO) test -run '^$$' -bench . -benchtime 2s ./...

fuzz: ## fuzz the parsers for 30 s each
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 30s ./runtime/config
	$(GO) test -run '^$$' -fuzz FuzzDecodePNG -fuzztime 30s ./depth

vet: ## go vet
	$(GO) vet ./...

deps: ## check (and as root, install) the Debian packages needed to build and run
	@DEBS="$(RUN_DEBS)" sh scripts/debs.sh

test-deps: ## the same for the packages the tests need (mosquitto, ffmpeg, GStreamer's RTSP server, opencv-doc)
	@DEBS="$(TEST_DEBS)" sh scripts/debs.sh

onnxruntime: $(ORT_LIB) ## fetch ONNX Runtime's CPU library for jetson/trt's tests into third_party/onnxruntime/

$(ORT_LIB):
	@[ -n "$(ORT_SHA256_$(ORT_ARCH))" ] || { echo "no ONNX Runtime $(ORT_VERSION) build for $$(uname -m) in onnxruntime-node: set EDGEDEPTH_ONNXRUNTIME_LIB to a libonnxruntime.so.1 of your own" >&2; exit 1; }
	@command -v npm >/dev/null 2>&1 || DEBS="npm" sh scripts/debs.sh
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	echo "fetching libonnxruntime.so.1 from onnxruntime-node@$(ORT_VERSION) (npm pack, 86 MB download)"; \
	(cd "$$tmp" && npm pack --silent onnxruntime-node@$(ORT_VERSION) >/dev/null); \
	lib=package/bin/napi-v6/linux/$(ORT_ARCH)/libonnxruntime.so.1; \
	tar -xzf "$$tmp/onnxruntime-node-$(ORT_VERSION).tgz" -C "$$tmp" "$$lib"; \
	echo "$(ORT_SHA256_$(ORT_ARCH))  $$tmp/$$lib" | sha256sum -c --quiet; \
	mkdir -p $(@D); mv "$$tmp/$$lib" $@.part; mv $@.part $@

clean: ## remove build outputs
	rm -rf bin
