"""cascope.config."""
