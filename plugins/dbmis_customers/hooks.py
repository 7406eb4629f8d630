"""Registers the customers plugin (filled in by its feature work)."""
