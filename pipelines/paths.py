"""Where the project's non-Python parts are: the dbt project and the expectation suites.

In a checkout they are the repository's `dbt/` and `great_expectations/`; the wheel (what the dagster role
installs) carries them inside the package as `pipelines/_dbt` and `pipelines/_great_expectations`
(pyproject.toml force-includes them). This module is the one place that decides.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def _packaged_or_checkout(packaged: str, checkout: str) -> Path:
    inside = _PACKAGE / packaged
    return inside if inside.is_dir() else _CHECKOUT / checkout


def is_packaged(path: Path) -> bool:
    """True when ``path`` was installed with the package (a wheel), not a checkout's directory."""
    return path.resolve().is_relative_to(_PACKAGE)


DBT_PROJECT_DIR = _packaged_or_checkout("_dbt", "dbt")
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"
SUITES_DIR = _packaged_or_checkout("_great_expectations", "great_expectations")
