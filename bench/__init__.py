"""Benchmarks run by `make bench` (`python -m bench [chat|consumers|clients]`): they print figures and
are not part of the test suite."""
