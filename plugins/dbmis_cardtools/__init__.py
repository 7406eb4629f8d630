"""Card reading and writing: the card tools page of the Qt workstation (any card, service cards)."""
