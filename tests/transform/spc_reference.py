"""An independent, plain-Python reference for the SPC and Ppk marts (written from the textbook definitions, not
from the SQL): individuals (XmR) chart limits from a baseline window and Nelson rules 1, 2, 3, 5, 6, 7.

Conventions (the same as docs/transform.md states for the marts): the baseline is the first ``baseline`` points;
centre = their mean; sigma = mean of their moving ranges / 1.128; a rule flags the point that completes its
pattern; "beyond k sigma" is strict (z > k), "within 1 sigma" is strict (|z| < 1); a point on the centre line
is on neither side; equal successive values break a trend.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

D2 = 1.128  # bias constant d2 of the moving range of two points


@dataclass(frozen=True)
class Limits:
    centre: float
    sigma: float

    @property
    def ucl(self) -> float:
        return self.centre + 3 * self.sigma

    @property
    def lcl(self) -> float:
        return self.centre - 3 * self.sigma


def xmr_limits(values: list[float], baseline: int) -> Limits:
    base = values[:baseline]
    ranges = [abs(b - a) for a, b in zip(base, base[1:], strict=False)]
    return Limits(statistics.fmean(base), statistics.fmean(ranges) / D2)


def nelson_flags(values: list[float], limits: Limits) -> list[dict[str, bool]]:
    z = [(v - limits.centre) / limits.sigma for v in values]
    flags = []
    for i in range(len(values)):
        w9, w3, w5, w15 = (z[i - n + 1 : i + 1] if i + 1 >= n else None for n in (9, 3, 5, 15))
        rising = falling = False
        if i >= 5:
            seg = values[i - 5 : i + 1]
            steps = [b - a for a, b in zip(seg, seg[1:], strict=False)]
            rising = all(s > 0 for s in steps)
            falling = all(s < 0 for s in steps)
        flags.append(
            {
                "rule_1": abs(z[i]) > 3,
                "rule_2": bool(w9) and (all(x > 0 for x in w9) or all(x < 0 for x in w9)),
                "rule_3": rising or falling,
                "rule_5": bool(w3) and (sum(x > 2 for x in w3) >= 2 or sum(x < -2 for x in w3) >= 2),
                "rule_6": bool(w5) and (sum(x > 1 for x in w5) >= 4 or sum(x < -1 for x in w5) >= 4),
                "rule_7": bool(w15) and all(abs(x) < 1 for x in w15),
            }
        )
    return flags


def ppk(values: list[float], lsl: float | None, usl: float | None) -> float | None:
    """Ppk with the sample standard deviation; one-sided when only one limit exists."""
    if len(values) < 2:
        return None
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    if sd == 0:
        return None
    sides = []
    if lsl is not None:
        sides.append((mean - lsl) / (3 * sd))
    if usl is not None:
        sides.append((usl - mean) / (3 * sd))
    return min(sides)
