"""cascope.simulate."""
