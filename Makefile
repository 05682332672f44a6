# onetdp — build, test and demo. Run `make help` for the targets.
GO       ?= go
BIN      ?= bin/onetdp
PKGS     ?= ./...
# Tests run packages in parallel; each creates uniquely named namespaces.
TESTFLAGS ?= -count=1 -timeout 20m

.PHONY: help generate build libonet test test-race bench lint check-generated demo clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

generate: ## compile the BPF C programs with clang through bpf2go (outputs are committed)
	$(GO) generate ./bpf/...

build: ## build the static onetdp binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X main.version=$$(git describe --always --dirty 2>/dev/null || echo dev)" -o $(BIN) ./cmd/onetdp

libonet: ## build the C ABI: build/libonet.so and its header build/onet.h (cgo, gcc)
	@mkdir -p build
	CGO_ENABLED=1 $(GO) build -trimpath -buildmode=c-shared -o build/libonet.so ./capi
	cp capi/onet.h build/onet.h

test: ## run every test (as root: also the netns/XDP/AF_XDP ones; otherwise they skip and say why)
	$(GO) test $(TESTFLAGS) $(PKGS)

test-race: ## run the tests with the race detector
	$(GO) test -race $(TESTFLAGS) $(PKGS)

bench: ## run the Go benchmarks (hot paths, allocations per packet)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

check-generated: generate ## regenerate, then fail if the committed outputs differ
	git diff --exit-code -- bpf/

demo: build ## (root) labs of namespaces: AF_XDP vs kernel UDP, RoCEv2, 4-rank allreduce, incast
	./$(BIN) demo

clean:
	rm -rf bin/ build/
