"""Helpers and conformance suites that plugin authors (ours and outside ones) run in their tests."""
