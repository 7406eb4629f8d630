"""Customer changes: details, tariff, capacity, meter replacement, closure, debts, history."""
