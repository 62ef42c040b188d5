"""`behaviorlab serve`: the HTTP service over saved models (predict, score) and the LLM generator.

Importing this package loads nothing heavy: FastAPI, uvicorn and torch are imported when an app is built.
Where things live: config.py (the typed settings), model_set.py (the served models, loaded and swapped as
one set), batching.py (micro-batching of /predict and /score), generation.py (the bounded /generate queue), auth.py,
metrics.py (Prometheus text), access_log.py (JSON lines), schemas.py (request and response bodies),
app.py (routes and error mapping), server.py (uvicorn, SIGHUP reload).
"""
