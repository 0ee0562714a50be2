"""The fault harness of issue 10: a fixed four-flow workload on the real broker, one fault per trial.

Run it with ``make faults TRIALS=N`` or ``python -m tests.faults --trials N [--seed S]``
(:mod:`tests.faults.__main__`). It lives under ``tests/`` because it is a test of the
processors as they run, built from the tests' own fixtures and builders, and is not shipped
with the ``bus`` distribution.
"""
