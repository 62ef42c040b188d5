"""The service through real HTTP on 127.0.0.1: every endpoint and every 4xx answer."""

from __future__ import annotations

import concurrent.futures

import pytest

from behaviorlab.serve.config import ModelSpec, ServeConfig


def config(saved_models, **changes) -> ServeConfig:
    models = [ModelSpec(name=name, path=path) for name, path in saved_models.items()]
    return ServeConfig(models=models, **changes)


@pytest.fixture
def server(start_server, saved_models):
    return start_server(config(saved_models))


def test_predict_returns_ranked_actions_for_a_count_and_a_neural_model(server):
    with server.client() as client:
        answer = client.post("/predict", json={"model": "markov", "history": ["a00", "a01"], "k": 3})
        assert answer.status_code == 200, answer.text
        predictions = answer.json()["predictions"]
        assert predictions[0]["action"] == "a02"  # the ring's next step
        assert len(predictions) == 3 and predictions[0]["probability"] >= predictions[1]["probability"]
        neural = client.post("/predict", json={"model": "sasrec", "history": ["a00"], "k": 8, "context": {"phase": "y"}})
        assert neural.status_code == 200, neural.text
        assert sorted(p["action"] for p in neural.json()["predictions"]) == [f"a{i:02d}" for i in range(8)]


def test_concurrent_predictions_share_forward_passes_and_match_single_ones(server):
    model = server.state.live.models.models["sasrec"].model
    histories = [[f"a{(i + j) % 8:02d}" for j in range(1 + i % 5)] for i in range(40)]
    with server.client() as client, concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda h: client.post("/predict", json={"model": "sasrec", "history": h, "k": 2}), histories))
    assert all(a.status_code == 200 for a in answers)
    for history, answer in zip(histories, answers, strict=True):
        expected = model.predict_next(history, k=2)
        assert [p["action"] for p in answer.json()["predictions"]] == [a for a, _ in expected]
        assert [p["probability"] for p in answer.json()["predictions"]] == pytest.approx([p for _, p in expected], rel=1e-4)
    sizes = server.state.metrics.batches[(("model", "sasrec"),)]
    assert sizes.n < 40  # some requests shared a forward pass


def test_score_gives_a_score_per_event_and_for_the_sequence(server):
    with server.client() as client:
        normal = client.post("/score", json={"events": ["a00", "a01", "a02", "a03"]}).json()
        odd = client.post("/score", json={"events": ["a00", "a05", "a02", "a07"]}).json()
    assert len(normal["event_scores"]) == 4 and normal["aggregate"] == "max"
    assert normal["sequence_score"] == pytest.approx(max(normal["event_scores"]))
    assert odd["sequence_score"] > normal["sequence_score"] and odd["anomalous"] and not normal["anomalous"]


def test_concurrent_scores_share_batched_calls_and_match_single_ones(start_server, saved_models):
    from behaviorlab.models.anomaly_injection import ContextSequence
    from behaviorlab.serve.config import BatchingConfig

    running = start_server(config(saved_models, batching=BatchingConfig(max_wait_ms=20)))
    detector = running.state.live.models.models["detector"].model
    sequences = [[f"a{(i + j * (1 + i % 3)) % 8:02d}" for j in range(2 + i % 6)] for i in range(40)]
    with running.client() as client:
        alone = [client.post("/score", json={"events": s}).json() for s in sequences]  # one request at a time
        single_batches = running.state.metrics.batches[(("model", "detector"),)].n
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            together = list(pool.map(lambda s: client.post("/score", json={"events": s}), sequences))
        text = client.get("/metrics").text
    assert single_batches == 40 and all(a.status_code == 200 for a in together)
    assert [a.json() for a in together] == alone  # a batch gives each sequence the scores it gets alone
    expected = detector.score_sequences([ContextSequence(source="x", actions=tuple(s), context=None) for s in sequences])
    assert [a["sequence_score"] for a in alone] == pytest.approx(list(expected), rel=1e-9)
    assert [len(a["event_scores"]) for a in alone] == [len(s) for s in sequences]
    batches = running.state.metrics.batches[(("model", "detector"),)]
    assert batches.n - single_batches < 40  # the concurrent requests shared batched calls
    assert f'behaviorlab_batch_size_count{{model="detector"}} {batches.n}' in text


def test_healthz_models_metrics_and_docs(server, saved_models):
    with server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok", "models": 3}
        models = {m["name"]: m for m in client.get("/models").json()["models"]}
        assert models["markov"]["kind"] == "markov" and models["markov"]["serves"] == "/predict"
        assert models["markov"]["vocabulary_size"] == 8 and len(models["markov"]["trained_on"]) == 16
        assert models["sasrec"]["context"] == {"phase": ["x", "y"]} and models["sasrec"]["trained_on"] is None
        assert models["detector"]["kind"] == "anomaly-detector" and models["detector"]["serves"] == "/score"
        client.post("/predict", json={"model": "markov", "history": ["a00"]})
        client.post("/predict", json={"model": "nope", "history": ["a00"]})
        text = client.get("/metrics").text
        assert client.get("/docs").status_code == 200
        assert "/predict" in client.get("/openapi.json").json()["paths"]
    assert 'behaviorlab_requests_total{route="/predict",method="POST",status="200"} 1' in text
    assert 'behaviorlab_requests_total{route="/predict",method="POST",status="404"} 1' in text
    assert 'behaviorlab_request_duration_seconds_bucket{route="/predict",le="+Inf"} 2' in text
    assert 'behaviorlab_batch_size_count{model="markov"} 1' in text
    assert 'behaviorlab_batch_queue_depth{model="markov"} 0' in text


@pytest.mark.parametrize(("body", "status", "code", "says"), [
    (b'{"model": "markov", "history": [', 400, "malformed_json", "not valid JSON"),
    (b'["a00"]', 422, "invalid_request", "body: Input should be an object"),
    ({"model": "markov", "history": ["a00", "zz", "yy"]}, 422, "unknown_actions", "['yy', 'zz']"),
    ({"model": "markov", "history": ["a00"] * 513}, 422, "history_too_long", "at most 512"),
    ({"model": "nope", "history": ["a00"]}, 404, "unknown_model", "'nope'"),
    ({"model": "detector", "history": ["a00"]}, 422, "wrong_model_kind", "does not answer /predict"),
    ({"history": ["a00"]}, 422, "model_required", "served by 2 models"),
    ({"model": "sasrec", "history": ["a00"], "context": {"phase": "z"}}, 422, "wrong_context", "never occurs"),
    ({"model": "sasrec", "history": ["a00"], "context": {"weekday": "Mon"}}, 422, "wrong_context", "reads no 'weekday'"),
    ({"model": "markov", "history": ["a00"], "context": {"phase": "x"}}, 422, "wrong_context", "reads no context"),
    ({"model": "markov", "history": ["a00"], "k": 101}, 422, "k_too_large", "limit of 100"),
    ({"model": "markov", "history": ["a00"], "k": 0}, 422, "invalid_request", "k"),
    ({"model": "markov", "histories": ["a00"]}, 422, "invalid_request", "history"),
    ({"model": "markov", "history": ["a00"] * 20000}, 413, "body_too_large", "65,536 bytes"),
])
def test_bad_predict_requests_get_a_clear_4xx(server, body, status, code, says):
    with server.client() as client:
        answer = (client.post("/predict", content=body, headers={"content-type": "application/json"})
                  if isinstance(body, bytes) else client.post("/predict", json=body))
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["code"] == code and says in error["message"], error
    assert error["hint"]


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/score", {"model": "markov", "events": ["a00"]}, 422, "wrong_model_kind"),
    ("/score", {"events": ["a00", "qq"]}, 422, "unknown_actions"),
    ("/score", {"events": ["a00"], "context": ["(0~3)"]}, 422, "wrong_context"),
    ("/score", {"events": []}, 422, "invalid_request"),
    ("/generate", {}, 404, "generate_not_configured"),
    ("/nothing", {}, 404, "not_found"),
])
def test_bad_score_and_other_requests_get_a_clear_4xx(server, path, body, status, code):
    with server.client() as client:
        answer = client.post(path, json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["code"] == code


def test_the_bearer_token_is_required_compared_and_never_logged(start_server, saved_models, monkeypatch, tmp_path):
    monkeypatch.setenv("BEHAVIORLAB_SERVE_TOKEN", "s3cret-token")
    log = tmp_path / "access.jsonl"
    running = start_server(config(saved_models, access_log=log))
    body = {"model": "markov", "history": ["a00"]}
    with running.client() as anonymous, running.client("wrong-token!") as wrong, running.client("s3cret-token") as right:
        assert anonymous.post("/predict", json=body).status_code == 401
        refused = wrong.post("/predict", json=body)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert refused.json()["error"]["code"] == "unauthorized"
        assert wrong.get("/metrics").status_code == 401
        assert anonymous.get("/healthz").status_code == 200
        assert right.post("/predict", json=body).status_code == 200
    import json
    import time

    deadline = time.monotonic() + 10  # a line is written just after its response is sent
    while log.read_text().count('"/predict"') < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["status"] for line in lines if line.get("path") == "/predict"] == [401, 401, 200]
    assert "s3cret" not in log.read_text() and "wrong-token" not in log.read_text()


def test_with_batching_off_each_request_is_its_own_forward_pass(start_server, saved_models):
    from behaviorlab.serve.config import BatchingConfig

    running = start_server(config(saved_models, batching=BatchingConfig(enabled=False)))
    with running.client() as client, concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: client.post("/predict", json={"model": "sasrec", "history": ["a01"]}), range(16)))
    assert all(a.status_code == 200 for a in answers)
    sizes = running.state.metrics.batches[(("model", "sasrec"),)]
    assert sizes.n == 16 and sizes.total == 16


def test_a_lone_request_waits_batch_wait_ms_for_company(start_server, saved_models):
    import time

    from behaviorlab.serve.config import BatchingConfig

    running = start_server(config(saved_models, batching=BatchingConfig(max_wait_ms=100)))
    with running.client() as client:
        started = time.perf_counter()
        assert client.post("/predict", json={"model": "sasrec", "history": ["a01"]}).status_code == 200
        assert time.perf_counter() - started >= 0.1  # nobody came, so the batch of one left at the deadline


def test_forward_passes_use_torch_threads_whatever_the_model_was_trained_with(start_server, ring_log, tmp_path):
    import torch

    from behaviorlab.models.registry import create_model

    create_model("sasrec", epochs=1, embedding_dim=8, inner_size=8, max_len=4, threads=2).fit(ring_log(10, 6)).save(tmp_path / "m")
    running = start_server(ServeConfig(models=[ModelSpec(name="m", path=tmp_path / "m")]))  # loading sets 2 threads
    assert running.state.executor.submit(torch.get_num_threads).result() == 1  # the serving default
