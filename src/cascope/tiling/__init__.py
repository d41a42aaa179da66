"""cascope.tiling."""
