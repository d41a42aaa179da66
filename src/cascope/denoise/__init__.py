"""cascope.denoise."""
