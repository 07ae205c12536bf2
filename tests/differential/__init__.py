"""Differential testing against the benchmarks' own code (see tests/test_tau2_differential.py)."""
