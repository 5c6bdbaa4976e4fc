# Ingest + validation (ING). Included by the root Makefile.
.PHONY: ingest-perf

ingest-perf: setup ## Measure land + validate of the default demo landing dir (figures in docs/ingest.md)
	$(UV) run python scripts/ingest_perf.py --scale 50
