"""The start that every RecBole script of the benches shares (run with -c in RecBole's own virtual environment).

The script reads its RecBole config as JSON from argv[1]; the keys of BENCH_KEYS are the bench's own (how many
threads, batches or seconds) and are taken out before RecBole sees the config. The start leaves `bench` (those
keys), `config`, `train_data`, `valid_data`, `test_data`, `model` and `trainer` for the body that follows.
"""

BENCH_KEYS = ("threads", "timed_batches", "budget_seconds")

_SETUP = r"""
import json, resource, statistics, sys, time, torch
config_dict = json.loads(sys.argv[1])
bench = {{key: config_dict.pop(key) for key in {keys!r} if key in config_dict}}
torch.set_num_threads(bench["threads"])
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.model.sequential_recommender import SASRec
from recbole.utils import get_trainer, init_seed
config = Config(model="SASRec", dataset={dataset!r}, config_dict=config_dict)
init_seed(config["seed"], config["reproducibility"])
train_data, valid_data, test_data = data_preparation(config, create_dataset(config))
init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
model = SASRec(config, train_data._dataset).to(config["device"])
trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
"""


def recbole_script(dataset: str, body: str) -> str:
    """The RecBole SASRec set-up on `dataset` (a folder name under RecBole's data_path), then `body`."""
    return _SETUP.format(keys=BENCH_KEYS, dataset=dataset) + body
