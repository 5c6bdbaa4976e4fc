"""Synthetic CGT manufacturing and QC data with documented fault injection (docs/data.md).

Public interface: `generate(settings, out_dir, scale, seed, fault_rate) -> GenerationReport` and
`truth_path(settings)`. `python -m pipelines.generate` runs it and prints timings.
"""

from .core import GenerationReport, generate, truth_path
from .faults import CATALOG

__all__ = ["CATALOG", "GenerationReport", "generate", "truth_path"]
