"""The garbage collector of a process that serves calls, set once its start-up is done.

A call allocates a few thousand short-lived objects (the AGI exchange, the decision, the
attempt and its events), almost none of them in reference cycles: with CPython's default
threshold (700) the young generation was collected every ten or so calls, and every full
collection walked the whole start-up heap again (modules, SQLAlchemy's compiled statements,
the phone-number metadata: about 165 000 objects, some 50 ms each time). Freezing what
start-up built moves it out of every later collection; a larger young generation makes the
remaining collections rarer, each one still short (cyclic garbage is still collected, just
every ``YOUNG`` allocations instead of every 700). Measured with ``python -m bench callpath``:
see BENCHMARKS.md.
"""

from __future__ import annotations

import gc

YOUNG = 20_000
"""Net allocations of container objects between two collections of the young generation."""
MIDDLE = 20
OLD = 50


def settle_for_serving() -> None:
    """Collect once, freeze what start-up left (it lives as long as the process) and collect
    the young generation less often from now on."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, MIDDLE, OLD)
