"""``python -m bench``: the whole benchmark suite (see :mod:`bench.suite`)."""

from bench.suite import main

main()
