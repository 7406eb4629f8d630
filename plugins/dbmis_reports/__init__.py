"""Built-in reports (sales, consumption, line loss, indicators, statements, card logs), the
``report``, ``lineloss`` and ``find`` commands, and the "Query and reports" pages."""
