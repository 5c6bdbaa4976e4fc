"""Dagster definitions, split by technology; ``pipelines.definitions`` merges them (see docs/orchestration.md)."""
