"""The cash desk: receipts and invoices (text, PDF, copies) and day closing."""
