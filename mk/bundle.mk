# Offline artifact bundle (docs/bundle.md). Included by the root Makefile.
# Cache outside the repo: CGT_BUNDLE_CACHE (default /var/cache/cgt-lakehouse/bundle).
.PHONY: bundle bundle-serve bundle-test

BUNDLE_BIND ?= 0.0.0.0
BUNDLE_PORT ?= 8640
# Components allowed to be absent (listed under "missing" in manifest.json). Marquez: io.github.marquezproject:
# marquez-api is not served by the Maven mirror reachable here (docs/decisions/0021); empty it where it is.
BUNDLE_ALLOW_MISSING ?= marquez

bundle: setup ## Build dist/bundle/ (Go binaries, Marquez classpath, wheelhouses, manifest, SHA256SUMS, SBOM)
	PATH=/usr/local/go/bin:$$PATH $(UV) run --frozen python -m bundle.build $(foreach c,$(BUNDLE_ALLOW_MISSING),--allow-missing $(c))

bundle-serve: setup ## Serve dist/bundle over HTTP for the lab (BUNDLE_BIND, BUNDLE_PORT)
	$(UV) run --frozen python -m bundle.serve --bind $(BUNDLE_BIND) --port $(BUNDLE_PORT)

bundle-test: bundle ## Build the bundle (incremental), then test it: sums, server health, Marquez, checksum refusal
	$(UV) run --frozen pytest tests/bundle -v
