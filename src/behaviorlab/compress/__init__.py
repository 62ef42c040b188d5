"""SPPC: choose representative, non-redundant real sequences and encode them compactly for prompts."""
