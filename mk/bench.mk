# Pipeline vs hand-written DuckDB benchmark (docs/performance.md). Included by the root Makefile.
# Data sets are generated once and cached under BENCH_DIR (default /var/tmp/cgt-lakehouse-bench).
.PHONY: bench

BENCH_SCALES ?= 100 1000
BENCH_REPEAT ?= 3

bench: setup ## Pipeline vs hand-written DuckDB at 100 and 1,000 batches, full and incremental runs (prints medians)
	$(UV) run python scripts/bench.py --scales $(BENCH_SCALES) --repeat $(BENCH_REPEAT)
