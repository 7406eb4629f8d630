"""Daily business: the electricity sale page of the Qt workstation."""
