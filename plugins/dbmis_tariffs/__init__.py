"""Built-in tariffs."""
