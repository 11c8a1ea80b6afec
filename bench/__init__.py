"""The benchmark harness of the performance issue (`make bench`, `python -m bench.run`).

Not part of the test suite: it measures, in one run, each figure against a baseline measured in
the same run (see bench/README.md).
"""
