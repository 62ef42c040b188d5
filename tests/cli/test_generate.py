import json

from behaviorlab.cli import main
from behaviorlab.cli.common import ReadFlags
from behaviorlab.cli.generate import load_job
from behaviorlab.datasets import read_event_log, write_event_log
from behaviorlab.generate.run import request_seed
from behaviorlab.llm.base import Failure, register_backend


def test_toml_and_flags_give_the_same_job(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('data = "d.parquet"\nout = "run"\n[generate]\nn_users = 7\nscenario = ["night"]\n'
                      '[generate.llm]\nmodel = "smollm2-135m"\n')
    from_file = load_job(config, {})
    from_flags = load_job(None, {"data": "d.parquet", "out": "run",
                                 "generate": {"n_users": 7, "scenario": ["night"], "llm": {"model": "smollm2-135m"}}})
    assert from_file == from_flags
    overridden = load_job(config, {"generate": {"n_users": 9, "seed": None, "llm": {"parallel": 2}}})
    assert overridden.generate.n_users == 9 and overridden.generate.llm.parallel == 2
    assert overridden.generate.llm.model == "smollm2-135m" and overridden.generate.scenario == ["night"]


def test_a_read_table_in_toml_and_read_flags_give_the_same_job(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('data = "d.txt"\nout = "run"\n[read]\nseparator = ";"\nheader = false\n'
                      '[read.mapping]\nuser = "0"\ntime = "1"\naction = "2"\n')
    from_file = load_job(config, {})
    assert from_file.read.separator == ";" and not from_file.read.header and from_file.read.mapping.action == "2"
    flags = ReadFlags(map_flag="user=0,time=1,action=2", sep="semicolon", no_header=True).options().model_dump(exclude_defaults=True)
    assert load_job(None, {"data": "d.txt", "out": "run", "read": flags}) == from_file
    # A flag overrides its key of the file, and the file's other keys stay.
    assert load_job(config, {"read": {"separator": "|"}}).read == from_file.read.model_copy(update={"separator": "|"})


def test_unknown_keys_and_scenarios_are_config_errors(tmp_path, tiny_log):
    config = tmp_path / "bad.toml"
    config.write_text('data = "d.parquet"\nout = "run"\n[generate]\nn_user = 7\n')
    assert main(["generate", "--config", str(config)]) == 2
    data = tmp_path / "tiny.parquet"
    write_event_log(tiny_log, data)
    assert main(["generate", "--data", str(data), "--out", str(tmp_path / "r"), "--scenario", "nigth"]) == 2
    assert main(["generate", "--data", str(data), "--out", str(tmp_path / "r"), "--engine", "spark"]) == 2


def test_generate_command_runs_and_resumes(tmp_path, tiny_log, fake, monkeypatch, capsys):
    monkeypatch.setenv("BEHAVIORLAB_CACHE_DIR", str(tmp_path / "cache"))
    backends = []

    def factory(config, notify=None):
        backends.append(fake())
        return backends[-1]

    register_backend("fake-for-cli-test")(factory)
    data = tmp_path / "tiny.parquet"
    write_event_log(tiny_log, data)
    args = ["generate", "--data", str(data), "--out", str(tmp_path / "run"), "--n-users", "3", "--length", "4",
            "--backend", "fake-for-cli-test", "--seed", "3"]
    assert main(args) == 0
    assert "3 synthetic sequences" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["backend"] == backends[0].name
    assert read_event_log(tmp_path / "run" / "synthetic.parquet").n_users == 3
    assert main(args) == 0 and backends[1].requests == []  # re-running a finished run redoes nothing


def test_a_dead_server_or_ctrl_c_stops_generate_with_advice_and_a_rerun_resumes(tmp_path, tiny_log, fake, valid_answer,
                                                                                monkeypatch, capsys):
    monkeypatch.setenv("BEHAVIORLAB_CACHE_DIR", str(tmp_path / "cache"))
    backends = iter([fake(lambda request, call: Failure("connection", "connection refused")),
                     fake(interrupt_after_batches=0),
                     # profile 0 gets an empty answer at each of its 3 attempts
                     fake(lambda request, call: "[]" if request.sampling.seed in {request_seed(0, 0, a) for a in range(3)}
                          else valid_answer(request))])
    register_backend("scripted-for-cli-test")(lambda config, notify=None: next(backends))
    data = tmp_path / "tiny.parquet"
    write_event_log(tiny_log, data)
    args = ["generate", "--data", str(data), "--out", str(tmp_path / "run"), "--n-users", "3", "--length", "4",
            "--backend", "scripted-for-cli-test"]
    assert main(args) == 4  # an LLMError, not a run "completed" with every profile failed
    err = capsys.readouterr().err
    assert "connection refused" in err and "re-run the same command" in err
    assert main(args) == 130
    assert "Interrupted. Re-run the same command" in capsys.readouterr().err
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 synthetic sequences" in out and "1 of 3 sequences were not made" in out
