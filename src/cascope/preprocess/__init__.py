"""cascope.preprocess."""
