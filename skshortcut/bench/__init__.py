"""``skshortcut benchmark``: every method on the embedded benchmarks, one table.

Importing this package imports every module in it; each registers its data
sets and methods (see :mod:`skshortcut.bench.core`).
"""

import importlib
import pkgutil

from .core import (
    DATASETS,
    METHODS,
    BenchmarkContext,
    format_table,
    register_dataset,
    register_method,
    run_benchmark,
)

# the baselines (erm, dfr) first, so that they lead the default table
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: (m.name != "erm_dfr", m.name)):
    if _info.name != "core":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["DATASETS", "METHODS", "BenchmarkContext", "format_table", "register_dataset", "register_method", "run_benchmark"]
