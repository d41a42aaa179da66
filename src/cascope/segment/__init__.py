"""cascope.segment."""
