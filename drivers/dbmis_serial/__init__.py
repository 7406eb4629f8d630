"""Serial card encoder driver (pyserial) speaking the DBMIS encoder protocol (docs/encoder-protocol.md)."""
