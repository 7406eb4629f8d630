"""PC/SC card reader driver (pyscard) for SLE4442 memory cards: ACS and Omnikey dialects."""
