"""cascope.metrics."""
