"""Populations of simulated people: priors from time-use statistics and from the real log, inferred profiles."""
