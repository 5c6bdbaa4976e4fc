# Superset on this machine over the demo's marts (dashboards/local.py; docs in dashboards/README.md).
.PHONY: dashboards dashboards-screenshots

DASHBOARDS_PORT ?= 8088

dashboards: setup ## Superset on 127.0.0.1:$(DASHBOARDS_PORT) with the four dashboards over the demo's marts (run make demo first)
	$(UV) run python dashboards/local.py --port $(DASHBOARDS_PORT)

dashboards-screenshots: setup ## Headless Chromium screenshots of the four dashboards -> docs/screenshots/local-*.png
	$(UV) run python dashboards/local.py --screenshots docs/screenshots
