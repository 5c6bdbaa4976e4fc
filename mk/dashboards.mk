# Superset on this machine over the demo's marts (dashboards/local.py; docs in dashboards/README.md).
.PHONY: dashboards dashboards-screenshots dashboards-bench

DASHBOARDS_PORT ?= 8088

dashboards: setup ## Superset on 127.0.0.1:$(DASHBOARDS_PORT) with the four dashboards over the demo's marts (run make demo first)
	$(UV) run python dashboards/local.py --port $(DASHBOARDS_PORT)

dashboards-screenshots: setup ## Headless Chromium screenshots of the four dashboards -> docs/screenshots/local-*.png
	$(UV) run python dashboards/local.py --screenshots docs/screenshots

DASHBOARDS_BENCH_BATCHES ?= 1000

dashboards-bench: setup ## p50/p95 of every chart's data request at 1,000 batches of marts in PostgreSQL (docs/performance.md)
	$(UV) run python -m tests.dashboards.bench --batches $(DASHBOARDS_BENCH_BATCHES) --hours 240 --repeat 20
