"""Evaluation: metrics, fidelity, diversity, privacy, utility and the training scenarios."""
