"""cascope.models."""
