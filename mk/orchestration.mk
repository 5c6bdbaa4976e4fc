# Orchestration (ORC): generated docs and performance figures. Included by the root Makefile.
.PHONY: settings-doc perf

settings-doc: setup ## Regenerate docs/settings.md from the Settings model
	$(UV) run python -m pipelines.settings_doc > docs/settings.md

perf: setup ## Measure stage timings at 1x and 10x scale (prints medians; see docs/performance.md)
	$(UV) run python scripts/perf_pipeline.py --scales 50 500 --repeat 3
