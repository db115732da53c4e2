"""The primitives benchmark's cases, one module per peer (``benchmarks/primitives.py`` runs them).

Every peer does the same work, written in its own idiom; the sizes below are shared so
that none of them can drift.  Each module's ``*_case(case, n)`` returns the seconds the
case took (the event case times itself, from ``set()`` on), or raises ValueError for a
case it does not know.
"""

#: operations per case at scale 1 (what per_s counts)
SIZES = {"pingpong": 20_000, "bounded": 20_000, "lock": 10_000, "event": 10_000,
         "gather": 10_000, "uncontended": 200_000}
PRODUCERS = CONSUMERS = SLOTS = 10
LOCKERS = 100
GATHERED = 1_000
