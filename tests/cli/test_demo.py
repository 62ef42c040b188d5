"""The main job end to end: real embedded model (smollm2-135m), real files, every step of the demo."""

import json
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import write_tiny_real

from behaviorlab.cli import main
from behaviorlab.cli.demo import find_default_dataset
from behaviorlab.errors import DataError


def test_default_dataset_is_found_in_a_shared_folder_above(tmp_path: Path) -> None:
    dataset = tmp_path / "shared" / "datasets" / "smartthings-fr"
    dataset.mkdir(parents=True)
    (dataset / "train.csv").write_text("sequence_id,position,weekday,hour_bin,device,device_control\n")
    deep = tmp_path / "project" / "src"
    deep.mkdir(parents=True)
    assert find_default_dataset([deep]) == dataset


def test_missing_default_dataset_says_to_pass_data(tmp_path: Path) -> None:
    if any((folder / "shared" / "datasets" / "smartthings-fr" / "train.csv").is_file() for folder in tmp_path.parents):
        pytest.skip("a shared/datasets/smartthings-fr lies above the temporary folder on this machine")
    with pytest.raises(DataError, match="--data"):
        find_default_dataset([tmp_path])


@pytest.mark.llm
@pytest.mark.slow
def test_demo_runs_every_step_and_resumes(tmp_path: Path, smollm2_path: Path, capsys) -> None:
    real = tmp_path / "real"
    write_tiny_real(real, np.random.default_rng(0))
    out = tmp_path / "demo"
    args = ["demo", "--data", str(real), "--out", str(out), "--n-users", "8", "--model", str(smollm2_path)]
    assert main(args) == 0
    run = out / "generation"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["complete"] and manifest["attempts"]["accepted"] == 8
    assert json.loads((run / "evaluation.json").read_text())["fidelity"]
    experiment = json.loads((run / "experiment.json").read_text())
    assert {row["scenario"] for row in experiment["summary"]} == {"real_only", "real_continued", "finetune_augment"}
    assert {cell["seed"] for cell in experiment["cells"]} == {0, 1, 2}  # three seeds: every gain has an interval
    assert all(row["gain_ci"] is not None for row in experiment["summary"] if row["scenario"] != "real_only")
    html = (run / "report.html").read_text()
    assert "<html" in html and "http://" not in html and "https://" not in html
    capsys.readouterr()
    # A second run resumes: no new LLM work, the same synthetic data.
    before = (run / "synthetic.parquet").read_bytes()
    assert main(args) == 0
    assert (run / "synthetic.parquet").read_bytes() == before
