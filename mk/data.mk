# Synthetic data (GEN): generator timing. Included by the root Makefile; docs/data.md records the figures.
.PHONY: data-perf

data-perf: setup ## Time the synthetic-data generator at 1x and 10x scale (prints wall + CPU seconds per phase)
	$(UV) run python -m pipelines.generate --scale 50
	$(UV) run python -m pipelines.generate --scale 500
