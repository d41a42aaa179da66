"""cascope.training."""
