"""behaviorlab: model user behavior with LLMs.

Real behavior logs go in; LLM-generated synthetic behavior data and next-behavior prediction models
come out. Importing this package does nothing else: no model loading, no network, no printing.
"""

from behaviorlab.schema import EventLog, Population, Profile, Schema, Vocabulary

__all__ = ["EventLog", "Population", "Profile", "Schema", "Vocabulary"]
__version__ = "0.1.0"
