"""The reference card format for SLE4442 memory cards (``dbmis-ref``)."""
