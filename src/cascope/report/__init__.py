"""cascope.report."""
