"""Evaluation: the tasks (splits, baselines, reports), fidelity, diversity, privacy, utility and the training
scenarios. The metrics they and the models share are in `behaviorlab.metrics`."""
