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

.PHONY: help run build test bench fuzz vet deps test-deps clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

run: deps build ## build and run the daemon on configs/default.yaml (CONFIG=file to change; Ctrl-C stops it)
	./$(BIN) run --config $(CONFIG)

build: ## build bin/edgedepth
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/edgedepth

# Packages are tested one at a time (-p 1): the end-to-end tests measure real-time
# behaviour (resume within 5 s, a camera 100 ms late) that a CPU-heavy package testing
# beside them on a 2-core machine would distort.
test: test-deps ## run all unit, end-to-end and import-rule tests
	$(GO) vet ./...
	$(GO) test -p 1 -count=1 -timeout 30m ./...

bench: test-deps ## run the benchmarks (figures in the README)
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

fuzz: ## fuzz the parsers for 30 s each
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 30s ./runtime/config
	$(GO) test -run '^$$' -fuzz FuzzDecodePNG -fuzztime 30s ./depth

vet: ## go vet
	$(GO) vet ./...

deps: ## check (and as root, install) the Debian packages needed to build and run
	@DEBS="$(RUN_DEBS)" sh scripts/debs.sh

test-deps: ## the same for the packages the tests need (mosquitto, ffmpeg, GStreamer's RTSP server, opencv-doc)
	@DEBS="$(TEST_DEBS)" sh scripts/debs.sh

clean: ## remove build outputs
	rm -rf bin
