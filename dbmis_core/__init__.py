"""DBMIS core: domain model, services, storage, hook specs and the plugin manager.

The core never imports Qt, pyscard or pyserial; hosts, plugins and drivers depend on it, never the
other way round (checked by import-linter, see pyproject.toml).
"""

__version__ = "0.1.0"
