"""Registers the cashdesk plugin (filled in by its feature work)."""
