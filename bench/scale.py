"""Benchmark of large catalogs and large logs (issue 15; not a test).

Stages, each run in its own process so that its peak RSS is its own; each writes OUT/<stage>.json
and a finished stage is not run again (delete its file to rerun), so an interrupted bench resumes (a skipped
stage is not kept: it runs again):
  beauty        our SASRec on Amazon Beauty (S3-Rec layout: `user item item ...` per line, leave-one-out)
                with the full softmax and with each sampled objective: s/epoch, time to the best
                validation epoch, test HR@10 / NDCG@10 with full ranking and among 100 sampled negatives.
  beauty_markov the default Markov model on the same split, in the same table (the simple baseline to beat).
  recbole       RecBole 1.2.1's SASRec on the same split (atomic files written under /tmp), in its own
                virtual environment (--recbole-python; skipped with a message when absent), capped at
                --recbole-epochs epochs and --recbole-seconds of training.
  markov_memory a generated log of 30k users and 25k actions: Markov train + full-ranking evaluation,
                peak RSS (target: at most 1 GB).

    flock /tmp/behaviorlab-heavy.lock .venv/bin/python bench/scale.py [--datasets ../shared/datasets] \
        [--stages beauty,beauty_markov,recbole,markov_memory] [--out /tmp/behaviorlab-scale]

The Beauty file is read by the library's `sequence-lines` loader (positions as times), for both sides.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from recbole_setup import recbole_script  # bench/, the folder of this script
from rich.console import Console
from rich.table import Table

console = Console(width=200)
HERE = Path(__file__).resolve().parent
OBJECTIVES: dict[str, dict] = {
    "full softmax": {"loss": "softmax"},
    "bpr": {"loss": "bpr"},
    "bce": {"loss": "bce"},
    "gbce (t=0.75)": {"loss": "gbce"},
    "sampled softmax (uniform q)": {"loss": "sampled_softmax", "negative_sampler": "uniform"},
    "sampled softmax (popularity q)": {"loss": "sampled_softmax", "negative_sampler": "popularity"},
}
# RecBole's reference SASRec (shared/notes/recbole-reference.md) on both sides, batches of 128 windows here.
SASREC = {"max_len": 50, "embedding_dim": 64, "n_layers": 2, "n_heads": 2, "inner_size": 256, "dropout": 0.5,
          "attention_dropout": 0.5, "batch_size": 128, "learning_rate": 1e-3}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def beauty_log(datasets: Path):  # -> EventLog
    """Amazon Beauty (S3-Rec layout) through the library's sequence-lines loader: positions as times."""
    from behaviorlab.datasets import load

    return load(datasets / "amazon-beauty" / "Beauty.txt", format="sequence-lines")


# ---------------------------------------------------------------- stages (run in child processes)


def stage_beauty(args: argparse.Namespace) -> dict:
    import torch

    from behaviorlab.metrics import ranking_report
    from behaviorlab.models.registry import create_model
    from behaviorlab.sequences import leave_one_out

    torch.set_num_threads(args.threads)
    split = leave_one_out(beauty_log(args.datasets))
    label = args.objective
    model = create_model("sasrec", **SASREC | OBJECTIVES[label], negatives=args.negatives, epochs=args.epochs,
                         patience=args.patience, seed=args.seed, threads=args.threads, device="cpu",
                         max_train_seconds=args.time_budget)
    started = time.perf_counter()
    reached: list[float] = []  # wall seconds from the start of fit to the end of each epoch (with its validation)

    def progress(done: int, total: int, info: dict | None = None) -> None:
        if info is not None and "batch" in info:  # a report from inside an epoch
            return
        reached.append(time.perf_counter() - started)
        console.print(f"  {label} epoch {done} at {reached[-1]:.0f} s: " + "  ".join(
            f"{k} {v:.4f}" for k, v in (info or {}).items() if k != "epoch"), highlight=False)
        sys.stdout.flush()  # the log is read while the stage runs

    model.fit(split.train, split.valid, progress=progress)
    record = model.training_record_
    full = ranking_report(model, split.test, ks=(10,))
    sampled = ranking_report(model, split.test, ks=(10,), negatives=100, seed=args.seed)
    epoch_seconds = [e["train_seconds"] for e in record.epochs]
    return {"objective": label, "loss_log": model.objective_, "test": full | sampled, "best_epoch": record.best_epoch,
            "epochs_run": record.epoch, "stopped_by_time": record.stopped_by_time,
            "valid_by_epoch": [e.get("valid_ndcg10") for e in record.epochs], "epoch_seconds": epoch_seconds,
            "median_epoch_seconds": statistics.median(epoch_seconds), "seconds_to_best": reached[record.best_epoch - 1],
            "reached_seconds": reached,
            "fit_seconds": time.perf_counter() - started, "peak_rss_mb": _peak_rss_mb(),
            "users": len(split.test), "actions": len(split.train.vocabulary)}


def stage_beauty_markov(args: argparse.Namespace) -> dict:
    """The strongest simple baseline on the same split: the default Markov model (no epochs; validation read
    for its score only, nothing is chosen on it)."""
    from behaviorlab.metrics import ranking_report
    from behaviorlab.models.baseline_check import validation_score
    from behaviorlab.models.markov import MarkovModel
    from behaviorlab.sequences import leave_one_out

    split = leave_one_out(beauty_log(args.datasets))
    started = time.perf_counter()
    model = MarkovModel().fit(split.train)
    fit_seconds = time.perf_counter() - started
    valid = validation_score(model, split.valid)
    full = ranking_report(model, split.test, ks=(10,))
    sampled = ranking_report(model, split.test, ks=(10,), negatives=100, seed=args.seed)
    return {"test": full | sampled, "valid_ndcg10": valid, "fit_seconds": fit_seconds, "peak_rss_mb": _peak_rss_mb()}


RECBOLE_SCRIPT = recbole_script("beauty", r"""
import os, random, numpy
# Resumable across sessions: after every validated epoch the trainer's state (RecBole's own checkpoint format) goes
# to saved/last.pth and this run's record to progress.json, each written to a temporary name and renamed. A restart
# resumes from the last finished epoch (an epoch in progress is lost); the best-epoch file stays RecBole's own.
work = os.path.dirname(config["checkpoint_dir"].rstrip("/"))
progress_path, last_path = os.path.join(work, "progress.json"), os.path.join(config["checkpoint_dir"], "last.pth")
if os.path.exists(progress_path) and os.path.exists(last_path):
    record = json.load(open(progress_path))
    trainer.resume_checkpoint(last_path)
    trainer.saved_model_file = record["best_file"]  # resume_checkpoint points it at last.pth
    rng = torch.load(os.path.join(config["checkpoint_dir"], "last_rng.pth"), weights_only=False)
    torch.set_rng_state(rng["torch"]); numpy.random.set_state(rng["numpy"]); random.setstate(rng["python"])
    print(f"RECBOLE_RESUMED at epoch {trainer.start_epoch + 1}", flush=True)
else:
    record = {"valid_ndcg10": [], "reached_seconds": [], "train_seconds": [], "best_file": trainer.saved_model_file,
              "sessions": 0}
record["sessions"] += 1
train_epoch, evaluate_valid = trainer._train_epoch, trainer._valid_epoch
epoch_started = [0.0]
def timed_train(*args, **kwargs):
    epoch_started[0] = time.perf_counter()
    out = train_epoch(*args, **kwargs)
    record["train_seconds"].append(time.perf_counter() - epoch_started[0])
    return out
def recording(*args, **kwargs):
    score, result = evaluate_valid(*args, **kwargs)
    total = (record["reached_seconds"][-1] if record["reached_seconds"] else 0.0) + time.perf_counter() - epoch_started[0]
    record["valid_ndcg10"].append(score)
    record["reached_seconds"].append(total)  # training + validation seconds summed over sessions
    print("RECBOLE_EPOCH " + json.dumps({"epoch": len(record["valid_ndcg10"]), "valid_ndcg10": score, "seconds": total}),
          flush=True)
    return score, result
class BudgetSpent(Exception):
    pass
def checkpoint(epoch_idx, valid_score):  # RecBole's callback, after its early-stopping bookkeeping of the epoch
    trainer._save_checkpoint(epoch_idx, verbose=False, saved_model_file=last_path + ".tmp")
    torch.save({"torch": torch.get_rng_state(), "numpy": numpy.random.get_state(), "python": random.getstate()},
               last_path + ".rng.tmp")
    os.replace(last_path + ".rng.tmp", os.path.join(config["checkpoint_dir"], "last_rng.pth"))
    os.replace(last_path + ".tmp", last_path)
    with open(progress_path + ".tmp", "w") as f:
        json.dump(record, f)
    os.replace(progress_path + ".tmp", progress_path)
    if record["reached_seconds"][-1] > bench["budget_seconds"] and not record.get("finished"):
        record["stopped_by_budget"] = True
        raise BudgetSpent  # out of RecBole's epoch loop, after this epoch's best-model file and checkpoint are written
trainer._train_epoch, trainer._valid_epoch = timed_train, recording
if trainer.start_epoch < trainer.epochs and not record.get("finished"):
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=checkpoint)
    except BudgetSpent:
        pass
record["finished"] = True
checkpoint(len(record["valid_ndcg10"]) - 1, None)
test = trainer.evaluate(test_data, load_best_model=True, model_file=record["best_file"], show_progress=False)
print("BENCH_RESULT " + json.dumps({"test": {k: float(v) for k, v in test.items()}, "valid_ndcg10": record["valid_ndcg10"],
                                     "reached_seconds": record["reached_seconds"], "train_seconds": record["train_seconds"],
                                     "sessions": record["sessions"], "stopped_by_budget": record.get("stopped_by_budget", False),
                                     "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))
""")


def write_atomic_files(datasets: Path, folder: Path) -> None:
    """Beauty as RecBole atomic files: folder/beauty/beauty.inter with user_id, item_id, timestamp (= position)."""
    (folder / "beauty").mkdir(parents=True, exist_ok=True)
    from behaviorlab.schema import ACTION, USER

    log = beauty_log(datasets)
    inter = log.frame.select(USER, ACTION, log.schema.time).sort(USER, log.schema.time)
    inter.columns = ["user_id:token", "item_id:token", "timestamp:float"]
    inter.write_csv(folder / "beauty" / "beauty.inter.tmp", separator="\t")
    (folder / "beauty" / "beauty.inter.tmp").replace(folder / "beauty" / "beauty.inter")


def stage_recbole(args: argparse.Namespace) -> dict:
    python = Path(args.recbole_python)
    if not python.exists():
        return {"skipped": f"no RecBole environment at {python} (make one as /work/shared/notes/recbole-reference.md says)"}
    work = args.out / "recbole-work"  # kept: the run resumes from its last finished epoch (delete to start over)
    if not (work / "beauty" / "beauty.inter").exists():
        write_atomic_files(args.datasets, work)
    config = {
        "data_path": str(work), "checkpoint_dir": str(work / "saved"), "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": 50, "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"},
        "metrics": ["Hit", "NDCG", "MRR"], "topk": [10], "valid_metric": "NDCG@10", "train_batch_size": 256,
        "epochs": args.recbole_epochs, "stopping_step": 10, "embedding_size": 64, "hidden_size": 64, "n_layers": 2,
        "n_heads": 2, "loss_type": "CE", "train_neg_sample_args": None, "device": "cpu", "use_gpu": False, "seed": 2020,
        "reproducibility": True, "show_progress": False, "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)", "threads": args.threads, "budget_seconds": args.recbole_seconds,
    }
    log_path = args.out / "recbole-run.log"  # not recbole.log: the driver writes this stage's own output there
    with open(log_path, "w", encoding="utf-8") as log:
        completed = subprocess.run([str(python), "-c", RECBOLE_SCRIPT, json.dumps(config)], stdout=log,
                                   stderr=subprocess.STDOUT, text=True, cwd=work, check=False)
    text = log_path.read_text(encoding="utf-8")
    result_line = [line for line in text.splitlines() if line.startswith("BENCH_RESULT ")]
    if completed.returncode != 0 or not result_line:
        return {"skipped": f"RecBole failed (exit {completed.returncode}), see {log_path}: {text[-1500:]}"}
    return recbole_summary(json.loads(result_line[-1].removeprefix("BENCH_RESULT ")), args)


def recbole_summary(result: dict, args: argparse.Namespace) -> dict:
    """The RecBole script's result with its best epoch (the first of the highest validation NDCG@10, as RecBole
    keeps it), the seconds to it and the caps of the run."""
    best = max(range(len(result["valid_ndcg10"])), key=result["valid_ndcg10"].__getitem__)
    return result | {"best_epoch": best + 1, "epochs_run": len(result["valid_ndcg10"]),
                     "seconds_to_best": result["reached_seconds"][best],
                     "median_epoch_seconds": statistics.median(result["train_seconds"]),
                     "epoch_cap": args.recbole_epochs, "seconds_cap": args.recbole_seconds}


def stage_markov_memory(args: argparse.Namespace) -> dict:
    import numpy as np
    import polars as pl

    from behaviorlab.metrics import ranking_report
    from behaviorlab.models.registry import create_model
    from behaviorlab.schema import EventLog, Schema, Vocabulary
    from behaviorlab.sequences import leave_one_out

    rng = np.random.default_rng(0)
    users, actions = 30_000, 25_000
    lengths = rng.integers(3, 20, size=users)  # about 10 events a user: 300k events, like a purchase log
    ids = np.minimum(rng.zipf(1.3, size=int(lengths.sum())), actions) - 1  # a long-tailed catalog
    names = [f"item{i}" for i in range(actions)]
    frame = pl.DataFrame({"user_id": np.repeat([f"u{u}" for u in range(users)], lengths),
                          "position": np.concatenate([np.arange(n) for n in lengths]),
                          "action": np.asarray(names)[ids]})
    log = EventLog(frame, Schema(time="position"), Vocabulary.from_actions(names))
    split = leave_one_out(log)
    started = time.perf_counter()
    model = create_model("markov").fit(split.train, split.valid)
    valid = ranking_report(model, split.valid, ks=(10,))  # what `behaviorlab train` reports
    fit_seconds = time.perf_counter() - started
    test = ranking_report(model, split.test, ks=(10,)) | ranking_report(model, split.test, ks=(10,), negatives=100)
    return {"users": users, "actions": actions, "events": int(lengths.sum()), "valid": valid, "test": test,
            "train_seconds": fit_seconds, "evaluate_seconds": time.perf_counter() - started - fit_seconds,
            "peak_rss_mb": _peak_rss_mb()}


STAGES = {"beauty": stage_beauty, "beauty_markov": stage_beauty_markov, "recbole": stage_recbole, "markov_memory": stage_markov_memory}


# ---------------------------------------------------------------- printing


def print_time_to_match(ours: dict[str, dict], curve: dict) -> None:
    """Validation only (the test split is read once, at the end of each run): how long each of our runs took to reach
    RecBole's best validation NDCG@10 so far, against RecBole's time to that epoch; `curve` is RecBole's record
    (progress.json while it runs, or its result), with valid_ndcg10 and reached_seconds per epoch."""
    scores, reached = curve["valid_ndcg10"], curve["reached_seconds"]
    best = max(range(len(scores)), key=scores.__getitem__)
    finished = "finished" if curve.get("finished") or "test" in curve else "still running"
    table = Table(title=f"Time to RecBole's best validation NDCG@10 so far ({scores[best]:.4f}, its epoch {best + 1} of "
                        f"{len(scores)}, at {reached[best]:.0f} s; RecBole {finished})")
    for column in ("system", "epoch reaching it", "seconds", "RecBole's seconds / ours"):
        table.add_column(column, justify="left" if column == "system" else "right")
    for label, r in ours.items():
        if "reached_seconds" not in r:
            continue
        hit = next((e for e, v in enumerate(r["valid_by_epoch"]) if v is not None and v >= scores[best]), None)
        if hit is None:
            table.add_row(f"behaviorlab, {label}", f"not in {r['epochs_run']} epochs", "-", "-")
        else:
            seconds = r["reached_seconds"][hit]
            table.add_row(f"behaviorlab, {label}", str(hit + 1), f"{seconds:.0f}", f"{reached[best] / seconds:.1f}x")
    console.print(table)


def print_beauty(ours: dict[str, dict], recbole: dict | None, markov: dict | None) -> None:
    table = Table(title="Amazon Beauty, leave-one-out (test; full ranking and 100 sampled negatives), SASRec L=50 d=64 2x2")
    for column in ("system", "s/epoch", "best epoch", "s to best", "HR@10", "NDCG@10", "HR@10 (100)", "NDCG@10 (100)",
                   "peak RSS MB"):
        table.add_column(column, justify="left" if column == "system" else "right")
    for label, r in ours.items():
        t = r["test"]
        table.add_row(f"behaviorlab, {label}", f"{r['median_epoch_seconds']:.1f}", f"{r['best_epoch']} of {r['epochs_run']}",
                      f"{r['seconds_to_best']:.0f}", f"{t['HR@10']:.4f}", f"{t['NDCG@10']:.4f}",
                      f"{t['HR@10 (sampled 100)']:.4f}", f"{t['NDCG@10 (sampled 100)']:.4f}", f"{r['peak_rss_mb']:.0f}")
    if markov:
        t = markov["test"]
        table.add_row("behaviorlab, Markov (no epochs)", "-", "-", f"{markov['fit_seconds']:.0f}", f"{t['HR@10']:.4f}",
                      f"{t['NDCG@10']:.4f}", f"{t['HR@10 (sampled 100)']:.4f}", f"{t['NDCG@10 (sampled 100)']:.4f}",
                      f"{markov['peak_rss_mb']:.0f}")
    if recbole and "skipped" not in recbole:
        t = recbole["test"]
        table.add_row(f"RecBole 1.2.1 (cap {recbole['epoch_cap']} epochs / {recbole['seconds_cap']:.0f} s)",
                      f"{recbole['median_epoch_seconds']:.1f}", f"{recbole['best_epoch']} of {recbole['epochs_run']}",
                      f"{recbole['seconds_to_best']:.0f}", f"{t['hit@10']:.4f}", f"{t['ndcg@10']:.4f}", "-", "-",
                      f"{recbole['peak_rss_mb']:.0f}")
    elif recbole:
        console.print(f"RecBole: {recbole['skipped']}", highlight=False)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", type=Path, default=HERE.parent.parent / "shared" / "datasets")
    parser.add_argument("--stages", default="beauty,beauty_markov,recbole,markov_memory")
    parser.add_argument("--objectives", default=",".join(OBJECTIVES), help="Labels of OBJECTIVES, comma separated (a label holds no comma).")
    parser.add_argument("--out", type=Path, default=Path("/tmp/behaviorlab-scale"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--negatives", type=int, default=256)
    parser.add_argument("--time-budget", type=float, default=180.0, help="Training seconds per objective.")
    parser.add_argument("--recbole-python", default="/work/recbole-venv/bin/python")
    parser.add_argument("--recbole-epochs", type=int, default=50)
    parser.add_argument("--recbole-seconds", type=float, default=1200.0, help="Stop RecBole after the epoch crossing this.")
    parser.add_argument("--stage", help=argparse.SUPPRESS)  # child process: run one stage
    parser.add_argument("--objective", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage:
        print("BENCH_RESULT " + json.dumps(STAGES[args.stage](args)))
        return
    results: dict[str, dict] = {}
    for stage in args.stages.split(","):
        runs = [(f"beauty {o}", ["--objective", o]) for o in args.objectives.split(",")] if stage == "beauty" else [(stage, [])]
        for key, extra in runs:
            path = args.out / f"{key.replace(' ', '_').replace(',', '').replace('=', '')}.json"
            if not path.exists():
                console.print(f"[bold]{key}[/bold]")
                command = [sys.executable, __file__, "--stage", stage, *extra, *sys.argv[1:]]
                log_path = path.with_suffix(".log")  # the child's progress, readable while it runs
                with open(log_path, "w", encoding="utf-8") as log:
                    completed = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, text=True, check=False)
                output = log_path.read_text(encoding="utf-8")
                lines = [line for line in output.splitlines() if line.startswith("BENCH_RESULT ")]
                if completed.returncode != 0 or not lines:
                    console.print(f"{key} failed (see {log_path}):\n{output[-3000:]}", highlight=False)
                    continue
                result = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
                if "skipped" in result:  # not a result: a rerun must try again (RecBole resumes its own work)
                    console.print(f"{key} skipped: {result['skipped'][-3000:]}", highlight=False)
                    continue
                path.write_text(json.dumps(result), encoding="utf-8")
            results[key] = json.loads(path.read_text(encoding="utf-8"))
    ours = {k.removeprefix("beauty "): v for k, v in results.items() if k.startswith("beauty ")}
    if ours or "recbole" in results or "beauty_markov" in results:
        print_beauty(ours, results.get("recbole"), results.get("beauty_markov"))
    progress = args.out / "recbole-work" / "progress.json"  # RecBole's record, also while it runs
    curve = results.get("recbole", {})
    if "valid_ndcg10" not in curve and progress.exists():
        curve = json.loads(progress.read_text(encoding="utf-8"))
    if ours and curve.get("valid_ndcg10"):
        print_time_to_match(ours, curve)
    if "markov_memory" in results:
        m = results["markov_memory"]
        console.print(f"Markov, generated log ({m['users']:,} users, {m['actions']:,} actions, {m['events']:,} events): "
                      f"train {m['train_seconds']:.1f} s, evaluate {m['evaluate_seconds']:.1f} s, peak RSS {m['peak_rss_mb']:.0f} MB "
                      f"({'within' if m['peak_rss_mb'] <= 1024 else 'OVER'} the 1 GB bound); test {m['test']}", highlight=False)
    (args.out / "summary.json").write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
