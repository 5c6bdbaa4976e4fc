"""Qualification (IQ/OQ) of an installed lakehouse: the requirements as data (``catalog``), check results from
the qualification runs (``evidence``) and the tamper-evident evidence package (``package``). The `lakehouse
qualify` commands call these; docs/qualification/README.md describes the whole procedure."""
