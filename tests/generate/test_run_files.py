"""Reading a generation run directory: its typed manifest, synthetic log and profiles keyed by person."""

from __future__ import annotations

import numpy as np

from behaviorlab.generate.manifest import RunManifest
from behaviorlab.generate.run_files import read_run


def test_run_reader_matches_profiles_to_generated_sequences(tiny_run) -> None:
    run = read_run(tiny_run.run)
    assert isinstance(run.manifest, RunManifest) and run.manifest.model == "test-model"
    assert run.grounded and run.grounding_digest is None  # the tiny run records no grounding digest
    assert sorted(run.profiles) == [f"syn-{i:05d}" for i in range(24)]
    assert [run.profiles[f"syn-{i:05d}"].profile_id for i in range(24)] == [f"p{i:03d}" for i in range(24)]
    bare = read_run(tiny_run.run / "synthetic.parquet")
    assert bare.manifest is None and bare.profiles == {} and bare.grounded
    assert bare.synthetic.frame.equals(run.synthetic.frame)


def test_run_reader_keys_profiles_by_the_profile_id_column(tmp_path, run_writer) -> None:
    run_writer(tmp_path / "run", np.random.default_rng(1), sequences_per_profile=3)
    run = read_run(tmp_path / "run")
    assert sorted(run.profiles) == [f"p{i:03d}" for i in range(8)] and run.manifest.sequences_per_profile == 3
