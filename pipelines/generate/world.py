"""The simulated manufacturing history: one autologous CAR-T therapy per batch, vein to vein.

`build_world` draws every entity from one seeded generator in a fixed order, so the same seed gives the same
history. Only the bioreactor minute series is left to `bioreactor.py` (it is large and drawn per batch).
Times are UTC ``pandas.Timestamp``s; ranges follow /work/shared/domain.md and are documented in docs/data.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..sources import FEEDS_BY_NAME
from .master import MasterData

EPOCH = pd.Timestamp("2026-01-05T06:00:00Z")  # first collection day; fixed so seeds differ only in draws
MFG_SITE = "MF-DE-01"
MFG_FIN = "W0A21"  # ISBT 128 facility identification number of the manufacturing site (fictional)
# collection centre -> (ISBT 128 FIN, treatment centre at the same hospital)
CENTRES = {
    "CC-HAM-01": ("W1234", "TC-HAM-01"),
    "CC-BER-02": ("W2231", "TC-BER-02"),
    "CC-MUC-03": ("W3307", "TC-MUC-03"),
    "CC-VIE-04": ("W4415", "TC-VIE-04"),
}
OPERATORS = [f"OP-{i:03d}" for i in range(1, 15)]
QA_REVIEWERS = ["QA-001", "QA-002", "QA-003"]
QC_ANALYSTS = [f"QC-A{i:02d}" for i in range(1, 9)]
IPC_ANALYSTS = [f"IPC-A{i:02d}" for i in range(1, 6)]

# material_code -> (name, supplier, shelf life in days)
MATERIALS = {
    "LV-CD19": ("Lentiviral vector anti-CD19 CAR", "Vectis Bio GmbH", 365),
    "LV-BCMA": ("Lentiviral vector anti-BCMA CAR", "Vectis Bio GmbH", 365),
    "MED-TEXMACS": ("TexMACS GMP Medium", "Miltenyi Biotec", 270),
    "CYT-IL7": ("MACS GMP Recombinant Human IL-7", "Miltenyi Biotec", 540),
    "CYT-IL15": ("MACS GMP Recombinant Human IL-15", "Miltenyi Biotec", 540),
    "BEAD-DYNA": ("CTS Dynabeads CD3/CD28", "Thermo Fisher Scientific", 730),
    "ACT-TRANSACT": ("MACS GMP T Cell TransAct", "Miltenyi Biotec", 540),
    "SEL-CD4CD8": ("CliniMACS CD4/CD8 Reagent", "Miltenyi Biotec", 540),
    "BUF-PBSEDTA": ("CliniMACS PBS/EDTA Buffer", "Miltenyi Biotec", 720),
    "HSA-20": ("Human Serum Albumin 20%", "Octapharma", 900),
    "CRYO-CS10": ("CryoStor CS10", "BioLife Solutions", 730),
}

# hours each QC test takes from sampling to result (min, max)
TEST_HOURS = {
    "viability": (2, 6),
    "car_positive": (20, 40),
    "cd3_positive": (20, 40),
    "vcn": (72, 120),
    "endotoxin": (4, 26),
    "sterility": (168, 176),
    "mycoplasma": (24, 48),
    "rcl": (120, 168),
    "residual_beads": (4, 24),
    "ifng_potency": (48, 72),
}
METHOD_VERSION = {
    "VIA-NC200": "4.2",
    "FLOW-CAR": "2.3",
    "FLOW-CD3": "2.3",
    "QPCR-VCN": "1.8",
    "LAL-KIN": "5.0",
    "STER-BACT": "3.1",
    "MYC-PCR": "2.0",
    "RCL-PCR": "1.2",
    "BEAD-CNT": "1.1",
    "POT-IFNG": "2.6",
}
# attributes that may be released by exception (efficacy, not safety) when OOS
EXCEPTION_RELEASABLE = {"viability", "car_positive", "ifng_potency"}

ISO7064_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"


def mod37_2(s: str) -> str:
    """ISO 7064 Mod 37-2 check character, as ISBT 128 uses for DIN and chain-of-identity identifiers."""
    p = 0
    for ch in s:
        p = ((p + ISO7064_CHARS.index(ch)) * 2) % 37
    return ISO7064_CHARS[(38 - p) % 37]


@dataclass
class Expansion:
    """What the bioreactor simulation needs for one batch's expansion step."""

    index: int
    batch_id: str
    equipment_id: str
    start: pd.Timestamp
    minutes: int
    vcd0: float  # viable cells/mL at seeding
    vcd_max: float  # logistic carrying capacity
    rate: float  # growth rate per day
    poor_growth: bool
    sample_minutes: list[int] = field(default_factory=list)  # minutes after start of daily samples

    def vcd_at(self, days: np.ndarray) -> np.ndarray:
        k, v0, r = self.vcd_max, self.vcd0, self.rate
        return k / (1.0 + (k / v0 - 1.0) * np.exp(-r * days))


@dataclass
class World:
    collections: pd.DataFrame
    batches: pd.DataFrame
    process_steps: pd.DataFrame
    samples: pd.DataFrame
    qc_results: pd.DataFrame
    deviations: pd.DataFrame
    material_lots: pd.DataFrame
    shipments: pd.DataFrame
    infusions: pd.DataFrame
    expansions: list[Expansion]
    oos: list[dict]  # the OOS results the generator made on purpose (sample_id, test_code, ...)
    as_of: pd.Timestamp


def _hours(rng: np.random.Generator, lo: float, hi: float) -> pd.Timedelta:
    return pd.Timedelta(minutes=int(round(rng.uniform(lo, hi) * 60)))


class _Lots:
    """Material lots received over time; a step consumes the newest released, unexpired lot received before it."""

    def __init__(self, rng: np.random.Generator, start: pd.Timestamp, end: pd.Timestamp):
        rows = []
        for code, (name, supplier, shelf_days) in MATERIALS.items():
            t = start - pd.Timedelta(days=int(rng.integers(20, 60)))
            n = 0
            while t < end:
                n += 1
                status = rng.choice(["released", "quarantined", "rejected"], p=[0.92, 0.05, 0.03])
                rows.append(
                    {
                        "material_lot_id": f"{code}-L{n:04d}",
                        "material_code": code,
                        "material_name": name,
                        "supplier": supplier,
                        "expiry_date": (t + pd.Timedelta(days=shelf_days)).date(),
                        "received_at": t.floor("min"),
                        "status": str(status),
                    }
                )
                t = t + pd.Timedelta(days=int(rng.integers(18, 35))) + _hours(rng, 0, 8)
        self.frame = pd.DataFrame(rows)
        usable = self.frame[self.frame.status == "released"]
        self._by_code = {c: g.sort_values("received_at") for c, g in usable.groupby("material_code")}
        # lot-to-lot variation of the expansion medium moves culture viability a little: the runs of batches on
        # one lot give the SPC charts real (small) shifts to find
        media = self.frame.material_lot_id[self.frame.material_code == "MED-TEXMACS"]
        self.viability_shift = {lot: float(rng.normal(0, 1.5)) for lot in media}

    def pick(self, code: str, at: pd.Timestamp) -> str:
        g = self._by_code[code]
        i = int(np.searchsorted(g.received_at.values, at.to_datetime64(), side="right")) - 1
        return str(g.material_lot_id.iloc[max(i, 0)])


def _qc_value(rng: np.random.Generator, attribute: str, poor: bool, viability_shift: float) -> float:
    """A typical release QC value (before it is forced into or out of spec)."""
    draw = {
        "viability": lambda: rng.normal(74 if poor else 89, 2.5) + viability_shift,
        "car_positive": lambda: rng.normal(34, 8.0),
        "cd3_positive": lambda: rng.normal(93, 3.0),
        "vcn": lambda: rng.lognormal(np.log(2.0), 0.3),
        "endotoxin": lambda: rng.lognormal(np.log(0.04), 0.6),
        "residual_beads": lambda: rng.lognormal(np.log(12), 0.7),
        "ifng_potency": lambda: rng.lognormal(np.log(450), 0.45),
    }
    return float(draw[attribute]())


def _force(rng: np.random.Generator, spec, value: float, oos: bool) -> float:
    """Move a value into spec (with a margin) or out of spec, as the batch's story requires."""
    lo, hi = spec.lsl, spec.usl
    if not oos:
        if lo is not None:
            value = max(value, lo * 1.03 + 0.1)
        if hi is not None:
            value = min(value, hi * 0.9)
        return value
    if spec.operator in (">=", ">"):
        return lo * rng.uniform(0.75, 0.97)
    return hi * rng.uniform(1.1, 1.8)


def _qc_text(attribute: str, value: float, spec) -> tuple[str, float | None]:
    """Result as the LIMS reports it: censored below the LOQ, rounded as the method reports."""
    if spec.loq is not None and value < spec.loq:
        loq = f"{spec.loq:g}"
        return f"<{loq}", None
    decimals = {"vcn": 2, "endotoxin": 2, "residual_beads": 0, "ifng_potency": 0}.get(attribute, 1)
    v = round(value, decimals)
    return (f"{v:.{decimals}f}", float(v))


def build_world(master: MasterData, scale: int, seed: int, fault_rate: float) -> World:
    """Simulate ``scale`` batches. OOS batches (rejected or exception-released) number
    max(1, round(fault_rate * scale)) when fault_rate > 0, else none."""
    rng = np.random.default_rng([seed, 1])
    n = scale
    products = master.products
    codes = list(products.product_code)
    weights = np.array([0.7, 0.3])[: len(codes)]
    weights = weights / weights.sum()

    gaps = rng.gamma(2.0, 1.0, size=n)  # days between collections (mean 2)
    day_offsets = np.floor(np.cumsum(gaps) - gaps[0]).astype(int)
    n_oos = 0 if fault_rate <= 0 else max(1, int(round(fault_rate * n)))
    oos_batches = set(rng.choice(n, size=min(n_oos, n), replace=False).tolist())
    patient_numbers = rng.choice(900_000, size=n, replace=False) + 100_000

    lots = _Lots(rng, EPOCH, EPOCH + pd.Timedelta(days=int(day_offsets[-1]) + 40))
    bioreactors = master.equipment_of("bioreactor")
    free_at = {b: EPOCH - pd.Timedelta(days=30) for b in bioreactors}
    equipment_for = {
        "selection": master.equipment_of("cell_processor"),
        "activation": master.equipment_of("biosafety_cabinet"),
        "transduction": master.equipment_of("biosafety_cabinet"),
        "harvest": master.equipment_of("cell_washer"),
        "formulation": master.equipment_of("biosafety_cabinet"),
        "cryopreservation": master.equipment_of("controlled_rate_freezer"),
    }
    counters = master.equipment_of("cell_counter")
    analyzers = master.equipment_of("metabolite_analyzer")
    din_seq = {c: int(rng.integers(1000, 9000)) * 10 for c in CENTRES}

    cols, bats, steps, samples, qcs, ships, infs, exps, oos_rows = ([] for _ in range(9))
    dev_events = []  # (opened_at, batch_id, category, severity, description)

    for i in range(n):
        product = str(rng.choice(codes, p=weights))
        prow = products.set_index("product_code").loc[product]
        centre = str(rng.choice(list(CENTRES)))
        fin, treatment_site = CENTRES[centre]
        collected = EPOCH + pd.Timedelta(days=int(day_offsets[i])) + _hours(rng, 0, 6)
        yy = f"{collected.year % 100:02d}"
        din_seq[centre] += 1
        din = f"{fin}{yy}{din_seq[centre]:06d}"
        coi_core = f"{MFG_FIN}{yy}{i + 1:06d}"
        coi_id = coi_core + mod37_2(coi_core)
        batch_id = f"B{yy}-{i + 1:05d}"
        patient_id = f"PT-{patient_numbers[i]}"
        cd3 = float(np.clip(rng.lognormal(np.log(2.2e9), 0.3), 1.0e9, 4.0e9))

        # inbound apheresis shipment, 2-8 C
        shipped = collected + _hours(rng, 1.5, 5)
        delivered = shipped + _hours(rng, 14, 30)
        excursion = bool(rng.random() < 0.04)
        tmax = round(float(rng.uniform(8.3, 11.0) if excursion else rng.uniform(5.0, 7.6)), 1)
        ships.append(
            dict(
                direction="inbound_apheresis",
                coi_id=coi_id,
                batch_id=None,
                from_site=centre,
                to_site=MFG_SITE,
                shipped_at=shipped,
                delivered_at=delivered,
                min_temp_c=round(float(rng.uniform(2.6, 4.5)), 1),
                max_temp_c=tmax,
                temperature_excursion=excursion,
            )
        )
        received = delivered + pd.Timedelta(minutes=int(rng.integers(10, 45)))
        if excursion:
            dev_events.append(
                (
                    received + _hours(rng, 0.5, 3),
                    batch_id,
                    "temperature_excursion",
                    "minor",
                    f"Apheresis shipper logged {tmax} °C, above the 2-8 °C range, for "
                    f"{int(rng.integers(12, 55))} min in transit; material accepted after assessment",
                )
            )
        cols.append(
            dict(
                din=din,
                coi_id=coi_id,
                patient_id=patient_id,
                product_code=product,
                collection_site=centre,
                collected_at=collected,
                received_at=received,
                cd3_count=round(cd3, -6),
                volume_ml=round(float(rng.uniform(140, 320)), 1),
            )
        )

        is_oos = i in oos_batches
        qc_attrs = master.attributes_of(product)
        oos_attr = None
        if is_oos:
            cqa = [a for a in qc_attrs if master.spec_for(product, a, collected.date()).is_cqa]
            oos_attr = str(rng.choice(cqa))
        poor = oos_attr == "viability"

        # --- process steps -------------------------------------------------------------------------
        t = received + _hours(rng, 0.5, 3)
        cells = cd3
        batch_steps = []

        # rows/batch are bound as defaults: the helper belongs to this batch's iteration only
        def step(
            name,
            start,
            dur,
            cells_in,
            cells_out,
            equipment=None,
            lots_used=(),
            operator=None,
            rows=batch_steps,
            batch=batch_id,
        ):
            rows.append(
                dict(
                    batch_id=batch,
                    step_seq=len(rows) + 1,
                    step_name=name,
                    started_at=start,
                    ended_at=start + dur,
                    operator_id=operator or str(rng.choice(OPERATORS)),
                    equipment_id=equipment,
                    material_lot_ids=";".join(lots_used) if lots_used else None,
                    viable_cells_in=None if cells_in is None else round(cells_in, -5),
                    viable_cells_out=None if cells_out is None else round(cells_out, -5),
                )
            )
            return start + dur

        pick_eq = lambda name: str(rng.choice(equipment_for[name]))  # noqa: E731
        started = t
        t = step("apheresis_receipt", t, _hours(rng, 0.5, 1.5), cells, cells)
        sel_out = cells * rng.uniform(0.55, 0.8)
        t = step(
            "selection",
            t + _hours(rng, 0.2, 1),
            _hours(rng, 4, 6),
            cells,
            sel_out,
            pick_eq("selection"),
            (lots.pick("SEL-CD4CD8", t), lots.pick("BUF-PBSEDTA", t)),
        )
        seeded = min(sel_out, rng.uniform(1.0e8, 2.0e8))
        activator = "BEAD-DYNA" if prow.activation_reagent.startswith("CD3/CD28 Dynabeads") else "ACT-TRANSACT"
        t = step(
            "activation",
            t + _hours(rng, 0.5, 2),
            _hours(rng, 1, 2),
            seeded,
            seeded,
            pick_eq("activation"),
            (lots.pick("MED-TEXMACS", t), lots.pick(activator, t), lots.pick("CYT-IL7", t), lots.pick("CYT-IL15", t)),
        )
        t = step(
            "transduction",
            t + _hours(rng, 20, 26),
            _hours(rng, 1.5, 3),
            seeded,
            seeded * 0.97,
            pick_eq("transduction"),
            (lots.pick(prow.vector_material_code, t),),
        )

        # expansion in a rocking bioreactor: the unit that is free earliest
        exp_start = (t + _hours(rng, 0.5, 2)).floor("min")
        unit = min(bioreactors, key=lambda b: (max(free_at[b], exp_start), b))
        exp_start = max(exp_start, free_at[unit]).floor("min")
        days = float(np.clip(rng.normal(9.5, 1.6), 7.0, 14.0))
        minutes = int(round(days * 1440))
        vol0 = 300.0
        vcd0 = seeded * 0.97 / vol0
        vcd_max = float(rng.uniform(0.9e7, 1.4e7)) * (0.45 if poor else 1.0)
        rate = float(rng.uniform(0.55, 0.75)) * (0.7 if poor else 1.0)
        first_sample = int(rng.integers(60, 180))
        exp = Expansion(
            i,
            batch_id,
            unit,
            exp_start,
            minutes,
            vcd0,
            vcd_max,
            rate,
            poor,
            [
                first_sample + d * 1440 + int(rng.integers(-40, 40))
                for d in range(int(days) + 1)
                if first_sample + d * 1440 + 40 < minutes
            ],
        )
        exps.append(exp)
        free_at[unit] = exp_start + pd.Timedelta(minutes=minutes) + pd.Timedelta(hours=12)
        medium = lots.pick("MED-TEXMACS", exp_start)
        final_vcd = float(exp.vcd_at(np.array([minutes / 1440.0]))[0])
        harvest_cells = final_vcd * 1000.0  # culture volume is 1 L after day 4
        t = step(
            "expansion",
            exp_start,
            pd.Timedelta(minutes=minutes),
            seeded * 0.97,
            harvest_cells,
            unit,
            (medium, lots.pick("CYT-IL7", exp_start), lots.pick("CYT-IL15", exp_start)),
        )
        shift = lots.viability_shift[medium]

        # daily in-process samples: cell counter (vcd, viability) and metabolite analyzer
        counter, analyzer = str(rng.choice(counters)), str(rng.choice(analyzers))
        analyst = str(rng.choice(IPC_ANALYSTS))
        for d, m in enumerate(exp.sample_minutes):
            frac_days = m / 1440.0
            vcd = float(exp.vcd_at(np.array([frac_days]))[0]) * rng.normal(1.0, 0.05)
            load = min(vcd / 1.2e7, 1.0)  # metabolic load relative to a full culture
            via = (96 - 3 * load - (1.2 * d if poor else 0)) + shift + rng.normal(0, 1.2)
            sat = exp_start + pd.Timedelta(minutes=m)
            sid = f"IPC-{batch_id}-D{d:02d}"
            for param, value, unit_, inst in (
                ("vcd", round(vcd, -3), "cells/mL", counter),
                ("viability", round(float(min(via, 99.5)), 1), "%", counter),
                ("glucose", round(float(4.6 - 2.1 * load + rng.normal(0, 0.08)), 2), "g/L", analyzer),
                ("lactate", round(float(0.25 + 1.9 * load + rng.normal(0, 0.06)), 2), "g/L", analyzer),
                ("glutamine", round(float(2.1 - 1.1 * load + rng.normal(0, 0.05)), 2), "mmol/L", analyzer),
            ):
                samples.append(
                    dict(
                        sample_id=sid,
                        batch_id=batch_id,
                        instrument_id=inst,
                        sampled_at=sat,
                        culture_day=d,
                        param=param,
                        value=value,
                        unit=unit_,
                        analyst_id=analyst,
                    )
                )

        harvested = harvest_cells * rng.uniform(0.85, 0.95)
        t = step("harvest", t + _hours(rng, 0.5, 2), _hours(rng, 2, 4), harvest_cells, harvested, pick_eq("harvest"))
        formulated = harvested * 0.98
        t = step(
            "formulation",
            t + _hours(rng, 0.3, 1),
            _hours(rng, 1, 2),
            harvested,
            formulated,
            pick_eq("formulation"),
            (lots.pick("HSA-20", t),),
        )
        qc_sampled = t - _hours(rng, 0.1, 0.5)
        t = step(
            "cryopreservation",
            t + _hours(rng, 0.2, 0.8),
            _hours(rng, 2, 3),
            formulated,
            formulated * 0.99,
            pick_eq("cryopreservation"),
            (lots.pick("CRYO-CS10", t),),
        )

        # --- QC release testing against the spec version effective on the sample date ---------------
        sample_id = f"QC-{batch_id}-FP"
        last_review = qc_sampled
        for attr in qc_attrs:
            spec = master.spec_for(product, attr, qc_sampled.date())
            tested = qc_sampled + _hours(rng, *TEST_HOURS[attr])
            reviewed = tested + _hours(rng, 2, 30)
            last_review = max(last_review, reviewed)
            oos_here = attr == oos_attr
            if spec.result_type == "pass_fail":
                text, value = ("Positive" if oos_here else spec.pass_text), None
            else:
                text, value = _qc_text(attr, _force(rng, spec, _qc_value(rng, attr, poor, shift), oos_here), spec)
            if spec.conforms(value, text) == oos_here:  # the story and the spec must agree
                raise AssertionError(f"QC draw disagrees with spec {spec.spec_id}: {text}")
            qcs.append(
                dict(
                    sample_id=sample_id,
                    batch_id=batch_id,
                    test_code=spec.test_code,
                    attribute=attr,
                    result_text=text,
                    result_value=value,
                    unit=spec.unit,
                    sampled_at=qc_sampled,
                    tested_at=tested,
                    reviewed_at=reviewed,
                    analyst_id=str(rng.choice(QC_ANALYSTS)),
                    method_version=METHOD_VERSION[spec.test_code],
                )
            )
            if oos_here:
                oos_rows.append(
                    dict(
                        batch_id=batch_id,
                        sample_id=sample_id,
                        test_code=spec.test_code,
                        attribute=attr,
                        result_text=text,
                        spec_id=spec.spec_id,
                    )
                )
        release = last_review + _hours(rng, 2, 24)
        if is_oos:
            disposition = "exception_release" if oos_attr in EXCEPTION_RELEASABLE and rng.random() < 0.3 else "rejected"
            limit = spec_text(master.spec_for(product, oos_attr, qc_sampled.date()))
            text = next(r["result_text"] for r in qcs if r["sample_id"] == sample_id and r["attribute"] == oos_attr)
            dev_events.append(
                (
                    last_review - _hours(rng, 1, 12),
                    batch_id,
                    "oos_investigation",
                    "critical" if disposition == "rejected" else "major",
                    f"OOS {oos_attr} result {text} against specification {limit}",
                )
            )
        else:
            disposition = "released"
        step("qc_release", t, release - t, None, None, operator=str(rng.choice(QA_REVIEWERS)))
        steps.extend(batch_steps)
        bats.append(
            dict(
                batch_id=batch_id,
                coi_id=coi_id,
                din=din,
                product_code=product,
                site=MFG_SITE,
                process_version=prow.process_version,
                started_at=started,
                ended_at=release,
                disposition=disposition,
                disposition_at=release,
            )
        )

        # random process deviations during manufacturing (about one batch in three)
        for _ in range(int(rng.poisson(0.35))):
            s = batch_steps[int(rng.integers(1, len(batch_steps) - 1))]
            cat, sev, text = _random_deviation(rng, s)
            dev_events.append((s["started_at"] + _hours(rng, 0.1, 2), batch_id, cat, sev, text))

        if disposition != "rejected":
            out_ship = release + _hours(rng, 20, 96)
            out_deliv = out_ship + _hours(rng, 18, 40)
            excursion = bool(rng.random() < 0.01)
            ships.append(
                dict(
                    direction="outbound_product",
                    coi_id=coi_id,
                    batch_id=batch_id,
                    from_site=MFG_SITE,
                    to_site=treatment_site,
                    shipped_at=out_ship,
                    delivered_at=out_deliv,
                    min_temp_c=round(float(rng.uniform(-192, -183)), 1),
                    max_temp_c=round(float(rng.uniform(-146, -140) if excursion else rng.uniform(-172, -158)), 1),
                    temperature_excursion=excursion,
                )
            )
            infs.append(
                dict(
                    coi_id=coi_id,
                    batch_id=batch_id,
                    treatment_site=treatment_site,
                    infused_at=out_deliv + _hours(rng, 30, 24 * 7),
                    dose_cells=round(float(rng.uniform(prow.dose_min_car_cells, prow.dose_max_car_cells)), -6),
                )
            )

    everything = (
        [c["received_at"] for c in cols]
        + [b["ended_at"] for b in bats]
        + [s["delivered_at"] for s in ships]
        + [x["infused_at"] for x in infs]
    )
    as_of = (max(everything) + pd.Timedelta(days=1)).floor("D")

    return World(
        collections=pd.DataFrame(cols),
        batches=pd.DataFrame(bats),
        process_steps=pd.DataFrame(steps),
        samples=pd.DataFrame(samples),
        qc_results=pd.DataFrame(qcs),
        deviations=_deviations(rng, dev_events, as_of),
        material_lots=lots.frame,
        shipments=_shipment_ids(pd.DataFrame(ships)),
        infusions=pd.DataFrame(infs, columns=FEEDS_BY_NAME["clinic__infusions"].column_names),  # may be empty
        expansions=exps,
        oos=oos_rows,
        as_of=as_of,
    )


def spec_text(spec) -> str:
    if spec.result_type == "pass_fail":
        return f"== {spec.pass_text}"
    if spec.operator == "between":
        return f"{spec.lsl:g}-{spec.usl:g} {spec.unit}"
    limit = spec.lsl if spec.operator in (">=", ">") else spec.usl
    return f"{spec.operator} {limit:g} {spec.unit}"


def _random_deviation(rng: np.random.Generator, s: dict) -> tuple[str, str, str]:
    step, eq = s["step_name"], s["equipment_id"] or "n/a"
    options = [
        ("equipment", f"{eq} alarm during {step} for {int(rng.integers(3, 40))} min; process parameters unaffected"),
        ("environmental_monitoring", f"Grade A settle plate {int(rng.integers(1, 4))} CFU during {step}"),
        ("documentation", f"Missing second-person verification in the batch record for {step}"),
        ("material", f"Label discrepancy on material lot used in {step}; identity confirmed by CoA"),
        ("process", f"{step} hold time exceeded the validated limit by {int(rng.integers(10, 90))} min"),
        ("equipment", f"Incubator temperature reached {rng.uniform(37.6, 38.4):.1f} °C during {step}"),
    ]
    cat, text = options[int(rng.integers(len(options)))]
    sev = str(rng.choice(["minor", "major", "critical"], p=[0.72, 0.25, 0.03]))
    return cat, sev, text


def _deviations(rng: np.random.Generator, events: list, as_of: pd.Timestamp) -> pd.DataFrame:
    rows, capa_n = [], 0
    for seq, (opened, batch_id, cat, sev, text) in enumerate(sorted(events, key=lambda e: (e[0], e[1])), 1):
        opened = opened.floor("min")
        yy = f"{opened.year % 100:02d}"
        closed = opened + _hours(rng, 24 * 3, 24 * 45)
        capa_id = capa_due = capa_closed = None
        if sev != "minor" or rng.random() < 0.2:
            capa_n += 1
            capa_id = f"CAPA-{yy}-{capa_n:04d}"
            due_days = {"minor": 90, "major": 60, "critical": 30}[sev]
            capa_due = (opened + pd.Timedelta(days=due_days)).date()
            late = rng.random() < 0.2
            capa_closed = (
                opened + _hours(rng, 24 * (due_days + 5), 24 * (due_days + 40))
                if late
                else opened + _hours(rng, 24 * 10, 24 * (due_days - 1))
            )
            if capa_closed > as_of:
                capa_closed = None
            closed = max(closed, opened + _hours(rng, 24 * 5, 24 * 9))
        rows.append(
            dict(
                deviation_id=f"DEV-{yy}-{seq:04d}",
                batch_id=batch_id,
                opened_at=opened,
                closed_at=closed if closed <= as_of else None,
                category=cat,
                severity=sev,
                description=text,
                capa_id=capa_id,
                capa_due_date=capa_due,
                capa_closed_at=capa_closed,
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "deviation_id",
            "batch_id",
            "opened_at",
            "closed_at",
            "category",
            "severity",
            "description",
            "capa_id",
            "capa_due_date",
            "capa_closed_at",
        ],
    )


def _shipment_ids(ships: pd.DataFrame) -> pd.DataFrame:
    ships = ships.sort_values(["shipped_at", "coi_id", "direction"], kind="stable").reset_index(drop=True)
    ships.insert(0, "shipment_id", [f"SHP-{t.year % 100:02d}{i + 1:06d}" for i, t in enumerate(ships.shipped_at)])
    return ships
