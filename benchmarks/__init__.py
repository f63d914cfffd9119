"""xconv's benchmarks: run with ``python -m benchmarks``; never part of the test suite."""
