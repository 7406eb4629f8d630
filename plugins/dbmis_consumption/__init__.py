"""User management: monthly consumption, rationality checks, abnormal-change ranking, charts and inspection work orders (issue 6)."""
