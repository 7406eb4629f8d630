"""Maintenance: backups, restore, archive clean-up and card key management (CLI and Qt page)."""
