"""cascope.qc."""
