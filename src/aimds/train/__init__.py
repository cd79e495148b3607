"""Training-time helpers: synthetic data generation for the classifier."""
