"""Master data the generator shares with dbt: the seeds in ``dbt/seeds/`` are the one place specs live.

The generator reads the same CSV files dbt loads as seeds, so a QC result it labels "OOS" is OOS under exactly
the specification version the marts will apply (the version effective on the sample's UTC date).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path

import pandas as pd

from pipelines.paths import SEEDS_DIR


@dataclass(frozen=True)
class Spec:
    spec_id: str
    product_code: str
    attribute: str
    test_code: str
    spec_version: int
    result_type: str  # numeric | pass_fail
    operator: str  # >= | > | <= | < | between | ==
    lsl: float | None
    usl: float | None
    unit: str | None
    pass_text: str | None
    loq: float | None
    is_cqa: bool

    def conforms(self, value: float | None, text: str) -> bool:
        """True when a result meets this spec; a censored '<LOQ' result counts as the LOQ value."""
        if self.result_type == "pass_fail":
            return text == self.pass_text
        if value is None and text.startswith("<"):
            value = float(text[1:])
        assert value is not None
        checks = {
            ">=": lambda v: v >= self.lsl,
            ">": lambda v: v > self.lsl,
            "<=": lambda v: v <= self.usl,
            "<": lambda v: v < self.usl,
            "between": lambda v: self.lsl <= v <= self.usl,
        }
        return bool(checks[self.operator](value))


@dataclass(frozen=True)
class MasterData:
    products: pd.DataFrame
    equipment: pd.DataFrame
    specs: pd.DataFrame

    def equipment_of(self, equipment_class: str) -> list[str]:
        eq = self.equipment
        return sorted(eq.loc[(eq.equipment_class == equipment_class) & (eq.status == "active"), "equipment_id"])

    def attributes_of(self, product_code: str) -> list[str]:
        return list(dict.fromkeys(self.specs.loc[self.specs.product_code == product_code, "attribute"]))

    @cached_property
    def _versions(self) -> dict[tuple[str, str], list[tuple[date, date | None, Spec]]]:
        def opt(v):
            return None if pd.isna(v) else v

        out: dict[tuple[str, str], list] = {}
        for r in self.specs.itertuples(index=False):
            spec = Spec(
                spec_id=r.spec_id,
                product_code=r.product_code,
                attribute=r.attribute,
                test_code=r.test_code,
                spec_version=int(r.spec_version),
                result_type=r.result_type,
                operator=r.operator,
                lsl=opt(r.lsl),
                usl=opt(r.usl),
                unit=opt(r.unit),
                pass_text=opt(r.pass_text),
                loq=opt(r.loq),
                is_cqa=bool(r.is_cqa),
            )
            until = None if pd.isna(r.effective_to) else r.effective_to.date()
            out.setdefault((r.product_code, r.attribute), []).append((r.effective_from.date(), until, spec))
        return out

    def spec_for(self, product_code: str, attribute: str, on: date) -> Spec:
        """The spec version effective on ``on``: effective_from <= on < effective_to (open-ended when empty)."""
        hits = [
            spec
            for since, until, spec in self._versions.get((product_code, attribute), [])
            if since <= on and (until is None or on < until)
        ]
        if len(hits) != 1:
            raise ValueError(f"expected one spec for {product_code}/{attribute} on {on}, found {len(hits)}")
        return hits[0]


def load_master(seeds_dir: Path = SEEDS_DIR) -> MasterData:
    """Read the three seed files (dbt/seeds/products.csv, equipment.csv, qc_specifications.csv)."""
    products = pd.read_csv(seeds_dir / "products.csv", dtype={"product_code": str})
    equipment = pd.read_csv(seeds_dir / "equipment.csv", dtype=str)
    specs = pd.read_csv(
        seeds_dir / "qc_specifications.csv",
        dtype={"pass_text": "string", "unit": "string"},
        parse_dates=["effective_from", "effective_to"],
    )
    specs["is_cqa"] = specs["is_cqa"].astype(str).str.lower() == "true"
    return MasterData(products=products, equipment=equipment, specs=specs)
