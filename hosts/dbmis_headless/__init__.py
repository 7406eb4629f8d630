"""Headless host: the ``dbmis`` command line (and later the HTTP API)."""
