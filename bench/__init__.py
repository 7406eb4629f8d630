"""Benchmarks and the synthetic data generator they use (run as ``python -m bench.<name>``)."""
