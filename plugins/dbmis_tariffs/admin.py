"""Tariff administration: versions with effective dates (filled in by its feature work)."""
