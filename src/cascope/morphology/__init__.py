"""cascope.morphology."""
