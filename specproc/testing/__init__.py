"""Synthetic data generators with known truth, shared by tests and sample_data generators."""
