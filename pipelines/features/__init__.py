"""Hand-crafted feature extractors, each a scikit-learn transformer over uint8 image batches."""
