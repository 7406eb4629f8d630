"""Registers the applications plugin (filled in by its feature work)."""
