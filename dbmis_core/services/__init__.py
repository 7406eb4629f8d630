"""Use cases. Hosts change data only through these; each checks the operator's permission."""
