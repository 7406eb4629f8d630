"""Settings and maintenance data: system parameters, code tables, the meter store and personnel
records (docs/user-guide/settings.md)."""
