"""dbt-duckdb plugin (profiles.yml `plugins:`): configures dbt's DuckDB connection through pipelines.duck.

dbt-duckdb runs plugins after connecting and before the profile's ATTACHes, which is when the extensions must be
loaded (from their wheels) and the S3 secret created. The settings are read from the LAKEHOUSE_* environment
that pipelines.transform sets for the dbt invocation.
"""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin

from pipelines import duck
from pipelines.settings import Settings


class Plugin(BasePlugin):
    def configure_connection(self, conn) -> None:
        duck.configure(conn, Settings())
