"""Next-behavior prediction models: one model per file, a shared training loop, and a registry.

Use `behaviorlab.models.registry.create_model(name, **config)` and `load_model(path)`; importing
this package loads no model and no heavy library.
"""
