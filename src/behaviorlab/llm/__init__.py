"""LLM backends behind one protocol (`LLMBackend`): an embedded llama.cpp model and OpenAI-compatible HTTP."""
