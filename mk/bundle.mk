# Offline artifact bundle (docs/bundle.md). Included by the root Makefile.
# Cache outside the repo: CGT_BUNDLE_CACHE (default /var/cache/cgt-lakehouse/bundle).
.PHONY: bundle bundle-serve bundle-test

BUNDLE_BIND ?= 0.0.0.0
BUNDLE_PORT ?= 8640
# Site artifact directory: components no registry reachable here serves (Marquez API jar, Marquez web UI), one folder
# each with its SHA256SUMS (docs/bundle.md, docs/decisions/0120). Default: ../shared/artifacts beside the checkout,
# else /work/shared/artifacts (the lab and CI machines).
BUNDLE_ARTIFACTS_DIR ?= $(firstword $(wildcard $(CURDIR)/../shared/artifacts) /work/shared/artifacts)
export BUNDLE_ARTIFACTS_DIR

bundle: setup ## Build dist/bundle/ (Go binaries, Marquez API and web UI, wheelhouses, manifest, SHA256SUMS, SBOM)
	PATH=/usr/local/go/bin:$$PATH $(UV) run --frozen python -m bundle.build

bundle-serve: setup ## Serve dist/bundle over HTTP for the lab (BUNDLE_BIND, BUNDLE_PORT)
	$(UV) run --frozen python -m bundle.serve --bind $(BUNDLE_BIND) --port $(BUNDLE_PORT)

bundle-test: bundle ## Build the bundle (incremental), then test it: sums, server health, Marquez, checksum refusal
	$(UV) run --frozen pytest tests/bundle -v
