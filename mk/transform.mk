# Transform (DBT): dbt on DuckDB. Included by the root Makefile; docs/transform.md records the figures.
.PHONY: dbt-manifest transform-perf

dbt-manifest: setup ## Parse the dbt project into dbt/target/manifest.json (for dagster-dbt; no database touched)
	$(UV) run python -c "from pipelines.transform import prepare_manifest; print(prepare_manifest())"

transform-perf: setup ## Time dbt build at 50 and 100 batches (synthetic landing Parquet; prints medians)
	$(UV) run python -m tests.transform.perf --batches 50 --repeat 3
	$(UV) run python -m tests.transform.perf --batches 100 --repeat 3
