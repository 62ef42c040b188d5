"""Benchmark of the next-behavior models on real data (not a test).

Stages, each run in its own process so that its peak memory is its own:
  ml100k       our SASRec on MovieLens-100k with RecBole's protocol (leave-one-out valid_and_test,
               time order, full ranking without removing seen items, max length 50, embedding 64,
               2 layers, 2 heads, CE loss); time per epoch, test HR/NDCG/MRR@10, peak memory, and
               per-request predict_next latency p50/p99.
  recbole      RecBole 1.2.1's SASRec on the same data and configuration for a few epochs, in its own
               virtual environment (--recbole-python): the time-per-epoch baseline of this run.
  smartthings  SmartThings FR, published split, predict the 10th event from the first 9: HR@1/5/10
               and NDCG@10 of every model, mean and std over seeds; also on rare targets (actions
               with few training events), where MiniLM text initialisation should help.
  ml100k_textinit  SASRec on MovieLens-100k without / with frozen / with fine-tuned MiniLM initialisation
               of the item embeddings (from titles and genres), the same --time-budget each; HR/NDCG@10 on
               all test targets and on rare items (--rare-max-items). Not in the default stages (slow).
  recbole_full RecBole's SASRec trained to its early stop with --seed, scored on test: RecBole's accuracy for
               seeds other than the reference run's. Not in the default stages (about an hour).

    .venv/bin/python bench/models.py [--datasets ../shared/datasets] [--stages ml100k,recbole,smartthings]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from recbole_setup import recbole_script  # bench/, the folder of this script
from rich.console import Console
from rich.table import Table

console = Console(width=200)  # wide tables stay readable in logs
HERE = Path(__file__).resolve().parent
RECBOLE_REFERENCE = {"HR@10": 0.1442, "NDCG@10": 0.0670, "MRR@10": 0.0438, "best epoch": 27, "s/epoch": 98.0}
CONFIGS = HERE.parent / "configs"  # the TOML model settings users pass to `behaviorlab train --config`


def config_file(dataset: str, model: str) -> dict:
    """A model's settings for a dataset, from configs/<dataset>/<model>.toml (shared with the CLI)."""
    import tomllib

    return tomllib.loads((CONFIGS / dataset / f"{model}.toml").read_text(encoding="utf-8"))


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _print_epoch(done: int, total: int, info: dict | None = None) -> None:
    if info and "batch" not in info:  # the finished epochs only, not the reports from inside one
        console.print(f"  epoch {done}: " + "  ".join(f"{k} {v:.4f}" for k, v in info.items() if k != "epoch"), highlight=False)


# ---------------------------------------------------------------- stages (run in child processes)


def stage_ml100k(args: argparse.Namespace) -> dict:
    import torch

    from behaviorlab.datasets import load
    from behaviorlab.metrics import ranking_report
    from behaviorlab.models.registry import create_model
    from behaviorlab.sequences import leave_one_out

    torch.set_num_threads(args.threads)
    split = leave_one_out(load(args.datasets / "movielens-100k"))
    config = config_file("ml-100k", "sasrec") | json.loads(args.sasrec_config)
    model = create_model("sasrec", **config, epochs=args.epochs, seed=args.seed, threads=args.threads, device="cpu",
                         max_train_seconds=args.time_budget)
    started = time.perf_counter()
    model.fit(split.train, split.valid, progress=_print_epoch)
    fit_seconds = time.perf_counter() - started
    record = model.training_record_
    test = ranking_report(model, split.test, ks=(10,))

    # Per-request latency: one history at a time, as a service would see them.
    histories = split.test.histories[:args.latency_requests]
    model.predict_next(histories[0], k=10)  # warm-up
    latencies = []
    for history in histories:
        t0 = time.perf_counter()
        model.predict_next(history, k=10)
        latencies.append((time.perf_counter() - t0) * 1000.0)
    epoch_seconds = [e["train_seconds"] for e in record.epochs]
    return {
        "config": config, "test": test, "best_epoch": record.best_epoch, "epochs_run": len(record.epochs), "stopped_by_time": record.stopped_by_time,
        "valid_by_epoch": [e.get("valid_ndcg10") for e in record.epochs],
        "best_valid_ndcg10": record.best_valid, "epoch_seconds": epoch_seconds,
        "median_epoch_seconds": statistics.median(epoch_seconds), "fit_seconds": fit_seconds,
        "latency_ms_p50": float(np.percentile(latencies, 50)), "latency_ms_p99": float(np.percentile(latencies, 99)),
        "peak_rss_mb": _peak_rss_mb(), "threads": args.threads,
    }


RECBOLE_SCRIPT = recbole_script("ml-100k", r"""
optimizer = trainer.optimizer
model.train()
seconds = []
last = time.perf_counter()
for i, interaction in enumerate(train_data):  # RecBole's own _train_epoch loop, batch by batch
    interaction = interaction.to(config["device"])
    optimizer.zero_grad()
    loss = model.calculate_loss(interaction)
    loss.backward()
    optimizer.step()
    now = time.perf_counter()
    seconds.append(now - last)  # includes fetching the batch, as an epoch does
    last = now
    if i >= bench["timed_batches"]:
        break
print("BENCH_RESULT " + json.dumps({"batch_seconds": seconds[1:], "batches_per_epoch": len(train_data),
                                     "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
""")


RECBOLE_FULL_SCRIPT = recbole_script("ml-100k", r"""
epochs = []  # validation NDCG@10 after each epoch, read from RecBole's own early-stopping hook
evaluate_valid = trainer._valid_epoch
def recording(*args, **kwargs):
    score, result = evaluate_valid(*args, **kwargs)
    epochs.append(score)
    return score, result
trainer._valid_epoch = recording
started = time.perf_counter()
trainer.fit(train_data, valid_data, saved=True, show_progress=False)
seconds = time.perf_counter() - started
test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)  # the best-validation checkpoint
print("BENCH_RESULT " + json.dumps({"test": {k: float(v) for k, v in test.items()}, "valid_ndcg10": epochs,
                                     "fit_seconds": seconds,
                                     "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
""")


def _run_recbole(args: argparse.Namespace, script: str, seed: int) -> dict:
    """Run `script` in the RecBole environment on ml-100k with the reference configuration; its BENCH_RESULT."""
    python = Path(args.recbole_python)
    if not python.exists():
        return {"skipped": f"no RecBole environment at {python} (see /work/shared/notes/recbole-reference.md)"}
    work = Path(tempfile.mkdtemp(prefix="recbole-bench-"))
    (work / "ml-100k").mkdir()
    source = (args.datasets / "movielens-100k").resolve()
    for suffix in ("inter", "item", "user"):
        (work / "ml-100k" / f"ml-100k.{suffix}").symlink_to(source / f"ml-100k.{suffix}")
    config = {
        "data_path": str(work), "checkpoint_dir": str(work / "saved"), "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": 50, "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["Hit", "NDCG", "MRR"], "topk": [10], "valid_metric": "NDCG@10", "train_batch_size": 256,
        "epochs": 50, "stopping_step": 10, "embedding_size": 64, "hidden_size": 64, "n_layers": 2,
        "n_heads": 2, "loss_type": "CE", "train_neg_sample_args": None, "device": "cpu", "use_gpu": False, "seed": seed,
        "reproducibility": True, "show_progress": False, "threads": args.threads, "timed_batches": args.recbole_batches,
    }
    completed = subprocess.run([str(python), "-c", script, json.dumps(config)], capture_output=True, text=True,
                               cwd=work, check=False)
    log = completed.stdout + completed.stderr
    result_line = [line for line in log.splitlines() if line.startswith("BENCH_RESULT ")]
    if completed.returncode != 0 or not result_line:
        return {"skipped": f"RecBole failed (exit {completed.returncode}): {log[-1500:]}"}
    return json.loads(result_line[-1].removeprefix("BENCH_RESULT "))


def stage_recbole(args: argparse.Namespace) -> dict:
    """RecBole's SASRec training loop timed over its first batches, extrapolated to a full epoch.

    Under a loaded machine a full RecBole epoch can take far longer than the rest of the bench;
    timing `--recbole-batches` batches (after one warm-up batch) of the same loop, with the same
    data loader and model, gives its time per epoch as mean batch time x batches per epoch.
    """
    result = _run_recbole(args, RECBOLE_SCRIPT, seed=2020)
    if "skipped" in result:
        return result
    batch_seconds = result["batch_seconds"]
    return {"batch_seconds": batch_seconds, "batches_timed": len(batch_seconds), "batches_per_epoch": result["batches_per_epoch"],
            "median_epoch_seconds": statistics.mean(batch_seconds) * result["batches_per_epoch"], "peak_rss_mb": result["peak_rss_mb"]}


SMARTTHINGS_MODELS: dict[str, tuple[str, dict]] = {
    "popularity": ("popularity", {}),
    "markov (order 2)": ("markov", {"order": 2}),
    "markov (order 1)": ("markov", {"order": 1}),
    "gru4rec": ("gru4rec", {}),
    "lstm": ("lstm", {}),
    "sasrec": ("sasrec", {}),
    "sasrec + context": ("sasrec", {"context_columns": ["weekday", "hour_bin"]}),
    "sasrec + MiniLM init (finetune)": ("sasrec", {"text_init": "finetune"}),
    "sasrec + MiniLM init (frozen)": ("sasrec", {"text_init": "frozen"}),
}


def stage_smartthings(args: argparse.Namespace) -> dict:
    import torch

    from behaviorlab.datasets import load
    from behaviorlab.metrics import ranking_metrics, target_columns
    from behaviorlab.models.registry import create_model
    from behaviorlab.sequences import published_split

    torch.set_num_threads(args.threads)
    split = published_split(load(args.datasets / "smartthings-fr"))
    counts = split.train.frame.get_column("action").value_counts()
    train_count = dict(zip(counts.get_column("action").to_list(), counts.get_column("count").to_list(), strict=True))
    rare = np.array([train_count.get(t, 0) <= args.rare_max for t in split.test.targets])
    results: dict[str, list[dict]] = {}
    for label, (name, config) in SMARTTHINGS_MODELS.items():
        if args.models and label not in args.models:
            continue
        runs = []
        for seed in args.seeds:
            extra = config_file("smartthings-fr", name) | {"epochs": args.epochs, "threads": args.threads, "device": "cpu",
                                          "max_train_seconds": args.run_budget} \
                if name in ("gru4rec", "lstm", "sasrec") else {}
            started = time.perf_counter()
            model = create_model(name, **extra | config, seed=seed).fit(split.train, split.valid)
            scores = model.predict_scores(split.test)
            targets = target_columns(model, split.test)
            run = ranking_metrics(scores, targets, ks=(1, 5, 10))
            if rare.any():
                rare_metrics = ranking_metrics(scores[rare], targets[rare], ks=(10,))
                run["rare HR@10"] = rare_metrics["HR@10"]
                run["rare NDCG@10"] = rare_metrics["NDCG@10"]
            run["fit seconds"] = time.perf_counter() - started
            console.print(f"  {label} seed {seed}: " + "  ".join(f"{k} {v:.4f}" for k, v in run.items()), highlight=False)
            runs.append(run)
            if name in ("popularity", "markov"):
                break  # deterministic: one run is every run
        results[label] = runs
    return {"results": results, "rare_targets": int(rare.sum()), "test_examples": len(split.test),
            "rare_max_train_events": args.rare_max, "peak_rss_mb": _peak_rss_mb()}


def stage_ml100k_textinit(args: argparse.Namespace) -> dict:
    """SASRec on ml-100k with and without MiniLM text initialisation of the item embeddings (titles and
    genres), the same budget each; scored on all test targets and on rare ones (items with at most
    --rare-max-items train interactions), where text should help most."""
    import torch

    from behaviorlab.datasets import load
    from behaviorlab.metrics import ranking_metrics, target_columns
    from behaviorlab.models.registry import create_model
    from behaviorlab.sequences import leave_one_out

    torch.set_num_threads(args.threads)
    split = leave_one_out(load(args.datasets / "movielens-100k"))
    counts = split.train.frame.get_column("action").value_counts()
    train_count = dict(zip(counts.get_column("action").to_list(), counts.get_column("count").to_list(), strict=True))
    rare = np.array([train_count.get(t, 0) <= args.rare_max_items for t in split.test.targets])
    results = {}
    for text_init in ("none", "frozen", "finetune"):
        started = time.perf_counter()
        model = create_model("sasrec", **config_file("ml-100k", "sasrec"), text_init=text_init, epochs=args.epochs,
                             seed=args.seed, threads=args.threads, device="cpu", max_train_seconds=args.time_budget)
        model.fit(split.train, split.valid, progress=_print_epoch)
        scores, targets = model.predict_scores(split.test), target_columns(model, split.test)
        run = ranking_metrics(scores, targets, ks=(10,))
        rare_run = ranking_metrics(scores[rare], targets[rare], ks=(10,))
        run |= {"rare HR@10": rare_run["HR@10"], "rare NDCG@10": rare_run["NDCG@10"],
                "best valid NDCG@10": model.training_record_.best_valid,
                "epochs": len(model.training_record_.epochs), "fit seconds": time.perf_counter() - started}
        console.print(f"  text_init={text_init}: " + "  ".join(f"{k} {v:.4f}" for k, v in run.items()), highlight=False)
        results[text_init] = run
    return {"results": results, "rare_targets": int(rare.sum()), "test_examples": len(split.test),
            "rare_max_items": args.rare_max_items, "time_budget": args.time_budget}


def stage_recbole_full(args: argparse.Namespace) -> dict:
    """RecBole's SASRec trained to its early stop (patience 10 on validation NDCG@10, at most 50 epochs) with
    --seed, scored on test from its best-validation checkpoint: the accuracy side of the comparison for seeds
    other than the reference run's 2020 (about 40 epochs of ~100 s each on the 2-core machine)."""
    result = _run_recbole(args, RECBOLE_FULL_SCRIPT, seed=args.seed)
    if "skipped" not in result:
        best = max(range(len(result["valid_ndcg10"])), key=result["valid_ndcg10"].__getitem__)
        result |= {"seed": args.seed, "best_epoch": best + 1, "epochs_run": len(result["valid_ndcg10"])}
    return result


STAGES = {"ml100k": stage_ml100k, "recbole": stage_recbole, "smartthings": stage_smartthings,
          "ml100k_textinit": stage_ml100k_textinit, "recbole_full": stage_recbole_full}


# ---------------------------------------------------------------- printing


def print_ml100k(ours: dict | None, recbole: dict | None) -> None:
    table = Table(title="MovieLens-100k, RecBole protocol (LOO valid_and_test, full ranking, L=50, d=64, 2 layers, 2 heads, CE)")
    for column in ("system", "HR@10", "NDCG@10", "MRR@10", "best epoch", "s/epoch (median)", "peak RSS MB"):
        table.add_column(column, justify="right" if column != "system" else "left")
    if ours:
        t = ours["test"]
        table.add_row("behaviorlab SASRec (this run)", f"{t['HR@10']:.4f}", f"{t['NDCG@10']:.4f}", f"{t['MRR@10']:.4f}",
                      f"{ours['best_epoch']} of {ours['epochs_run']}", f"{ours['median_epoch_seconds']:.1f}", f"{ours['peak_rss_mb']:.0f}")
    if recbole and "skipped" not in recbole:
        table.add_row(f"RecBole SASRec (this run, timed {recbole['batches_timed']} of {recbole['batches_per_epoch']} batches)",
                      "-", "-", "-", "-", f"{recbole['median_epoch_seconds']:.1f}", f"{recbole['peak_rss_mb']:.0f}")
    r = RECBOLE_REFERENCE
    table.add_row("RecBole SASRec (reference, converged, earlier run)", f"{r['HR@10']:.4f}", f"{r['NDCG@10']:.4f}",
                  f"{r['MRR@10']:.4f}", f"{r['best epoch']}", f"{r['s/epoch']:.0f}", "1200")
    console.print(table)
    if ours:
        console.print(f"NDCG@10 ratio ours / RecBole reference: {ours['test']['NDCG@10'] / r['NDCG@10']:.3f} (goal >= 1)")
        console.print(f"SASRec predict_next latency per request: p50 {ours['latency_ms_p50']:.2f} ms, "
                      f"p99 {ours['latency_ms_p99']:.2f} ms; peak RSS {ours['peak_rss_mb']:.0f} MB ({ours['threads']} threads)")
    if ours and recbole and "skipped" not in recbole:
        ratio = ours["median_epoch_seconds"] / recbole["median_epoch_seconds"]
        console.print(f"Time per epoch ratio ours / RecBole, same run: {ratio:.3f} (goal <= 0.2); RecBole's epoch is "
                      f"extrapolated from {recbole['batches_timed']} timed batches (mean {statistics.mean(recbole['batch_seconds']):.2f} s)")
    elif recbole and "skipped" in recbole:
        console.print(f"[yellow]RecBole skipped:[/] {recbole['skipped']}")


def print_smartthings(result: dict) -> None:
    from behaviorlab.metrics import mean_and_std

    table = Table(title=f"SmartThings FR, published split, 10th event from the first 9 ({result['test_examples']} test "
                        f"sequences; rare = {result['rare_targets']} targets with <= {result['rare_max_train_events']} train events)")
    keys = ("HR@1", "HR@5", "HR@10", "NDCG@10", "rare HR@10", "rare NDCG@10", "fit seconds")
    table.add_column("model")
    table.add_column("seeds", justify="right")
    for key in keys:
        table.add_column(key, justify="right")
    baseline = mean_and_std(result["results"]["popularity"])["NDCG@10"][0] if "popularity" in result["results"] else None
    for label, runs in result["results"].items():
        summary = mean_and_std(runs)
        cells = [f"{summary[k][0]:.4f} ± {summary[k][1]:.4f}" if k in summary else "-" for k in keys]
        table.add_row(label, str(len(runs)), *cells)
    console.print(table)
    if baseline:
        for label, runs in result["results"].items():
            console.print(f"  NDCG@10 ratio {label} / popularity: {mean_and_std(runs)['NDCG@10'][0] / baseline:.2f}")


def print_ml100k_textinit(result: dict) -> None:
    table = Table(title=f"MovieLens-100k SASRec, MiniLM text initialisation of item embeddings ({result['test_examples']} test "
                        f"users; rare = {result['rare_targets']} targets with <= {result['rare_max_items']} train "
                        f"interactions; budget {result['time_budget']} s each)")
    keys = ("HR@10", "NDCG@10", "rare HR@10", "rare NDCG@10", "best valid NDCG@10", "epochs", "fit seconds")
    table.add_column("text_init")
    for key in keys:
        table.add_column(key, justify="right")
    for label, run in result["results"].items():
        table.add_row(label, *(f"{run[k]:.4f}" if isinstance(run[k], float) else str(run[k]) for k in keys))
    console.print(table)


def print_recbole_full(result: dict) -> None:
    if "skipped" in result:
        console.print(f"[yellow]RecBole skipped:[/] {result['skipped']}")
        return
    t = result["test"]
    console.print(f"RecBole SASRec, seed {result['seed']}, trained to its early stop: test HR@10 {t['hit@10']:.4f}  "
                  f"NDCG@10 {t['ndcg@10']:.4f}  MRR@10 {t['mrr@10']:.4f}; best validation NDCG@10 "
                  f"{max(result['valid_ndcg10']):.4f} at epoch {result['best_epoch']} of {result['epochs_run']}; "
                  f"{result['fit_seconds'] / result['epochs_run']:.0f} s per epoch with validation", highlight=False)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=HERE.parent.parent / "shared" / "datasets")
    parser.add_argument("--stages", default="ml100k,recbole,smartthings")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=200, help="maximum epochs (early stopping on validation decides)")
    parser.add_argument("--seed", type=int, default=2020, help="seed of the ml100k run")
    parser.add_argument("--seeds", default="0,1,2", help="seeds of the SmartThings runs")
    parser.add_argument("--models", default="", help="SmartThings model labels to run (default: all), separated by ';'")
    parser.add_argument("--rare-max", type=int, default=50, help="a SmartThings target is rare with at most this many train events")
    parser.add_argument("--rare-max-items", type=int, default=20,
                        help="an ml-100k test target is rare with at most this many train interactions")
    parser.add_argument("--latency-requests", type=int, default=500)
    parser.add_argument("--sasrec-config", default="{}", help="JSON overrides of our ml100k SASRec config")
    parser.add_argument("--recbole-python", default="/tmp/recbole-venv/bin/python")
    parser.add_argument("--recbole-batches", type=int, default=60, help="RecBole training batches to time")
    parser.add_argument("--time-budget", type=float, default=None, help="stop our ml100k training after this many seconds")
    parser.add_argument("--run-budget", type=float, default=None, help="stop each SmartThings neural run after this many seconds")
    parser.add_argument("--parallel", action="store_true", help="run the stages at the same time")
    parser.add_argument("--json-out", type=Path, default=None, help="write every figure as JSON here")
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)  # internal: run one stage
    parser.add_argument("--result-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.models = [m for m in args.models.split(";") if m]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.stage:  # child process: run one stage, write its result
        result = STAGES[args.stage](args)
        args.result_file.write_text(json.dumps(result))
        return 0
    if not args.datasets.is_dir():
        console.print(f"[red]No datasets at {args.datasets}[/]; pass --datasets.")
        return 2
    results: dict[str, dict] = {}
    passthrough = list(argv if argv is not None else sys.argv[1:])
    if "--json-out" in passthrough:  # the children return results through --result-file instead
        at = passthrough.index("--json-out")
        del passthrough[at:at + 2]
    stages = [s for s in args.stages.split(",") if s]
    # --parallel runs the stages at once, so that ours and RecBole's epochs meet the same machine load.
    batches = [stages] if args.parallel else [[s] for s in stages]
    for batch in batches:
        running = {}
        for stage in batch:
            console.rule(stage)
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
                result_file = Path(handle.name)
            process = subprocess.Popen([sys.executable, __file__, *passthrough, "--stage", stage, "--result-file", str(result_file)],
                                       env=os.environ | {"PYTHONUNBUFFERED": "1"})
            running[stage] = (process, result_file, time.perf_counter())
        for stage, (process, result_file, started) in running.items():
            if process.wait() != 0:
                console.print(f"[red]stage {stage} failed (exit {process.returncode})[/]")
                continue
            results[stage] = json.loads(result_file.read_text())
            results[stage]["stage_seconds"] = time.perf_counter() - started
            result_file.unlink()
    if "ml100k" in results or "recbole" in results:
        print_ml100k(results.get("ml100k"), results.get("recbole"))
    if "smartthings" in results:
        print_smartthings(results["smartthings"])
    if "ml100k_textinit" in results:
        print_ml100k_textinit(results["ml100k_textinit"])
    if "recbole_full" in results:
        print_recbole_full(results["recbole_full"])
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
