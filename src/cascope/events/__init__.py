"""cascope.events."""
