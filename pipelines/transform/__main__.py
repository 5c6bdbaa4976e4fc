"""Developer entry: ``python -m pipelines.transform sources`` regenerates dbt/models/staging/__sources.yml from the
feed registry; ``python -m pipelines.transform dbt <args>`` runs any dbt command with the environment and vars the
settings give (run id ``dev``), e.g. ``python -m pipelines.transform dbt ls --select marts``."""

from __future__ import annotations

import json
import sys

from pipelines.settings import get_settings
from pipelines.transform import _runner, dbt_env, dbt_environment
from pipelines.transform.project import DBT_PROJECT_DIR, SOURCES_YML, dbt_vars, render_sources_yml


def main(argv: list[str]) -> int:
    if argv[:1] == ["sources"]:
        SOURCES_YML.write_text(render_sources_yml())
        print(f"wrote {SOURCES_YML}")
        return 0
    if argv[:1] == ["dbt"] and len(argv) > 1:
        settings = get_settings()
        args = [*argv[1:], "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
        if argv[1] not in ("parse", "ls", "list", "clean", "deps", "debug"):
            args += ["--vars", json.dumps(dbt_vars(settings, "dev"))]
        with dbt_environment(dbt_env(settings)):
            return 0 if _runner().invoke(args).success else 1
    print("usage: python -m pipelines.transform sources | dbt <dbt args>", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
