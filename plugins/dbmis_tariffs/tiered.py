"""Tiered block tariff (filled in by its feature work)."""
