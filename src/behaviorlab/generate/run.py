"""A resumable generation run: profiles -> grounded compact prompts -> constrained LLM -> checked sequences.

A run makes `n_users` sequences from ceil(n_users / sequences_per_profile) profiles. A profile's sequences
differ only in their time skeleton, the last line of their prompts, and are asked for one after the other
in one batch: the first prompt is computed whole, the next ones reuse its computed prefix (`reuse_prefix`),
so each further sequence costs the model only its last lines and its answer. The order is fixed and every
group of requests starts from a whole prompt, so the reuse is the same on every run and on resume.

Everything a run makes is a function of (config, data, profile index, attempt): the population, each
prompt and each request's seed. Finished attempts are committed to the SQLite store batch by batch,
so a re-run of the same command skips them and an interrupted-then-resumed run writes exactly the
output an uninterrupted one writes.

A failed request is either the profile's own or the backend's. The profile's (a prompt the server
cannot take, an answer that breaks the schema) is recorded as an attempt and counted. The backend's
stops the run with an LLMError (exit 4) and records nothing, so the same command retries those
profiles once the backend is fixed: any failure that says the server is down (BACKEND_DOWN), and a
batch of two or more requests that all failed the same way with none succeeding (a rejected request
at any batch; schema-breaking answers until the run's first accepted sequence: see
`_whole_batch_failure`).

Run directory: `run.sqlite` (store), `synthetic.parquet` (the synthetic EventLog), `manifest.json`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from behaviorlab.atomic import exclusive_writer
from behaviorlab.compress.encode import CodeBook
from behaviorlab.compress.tokens import PromptCost, message_tokens
from behaviorlab.errors import DataError, GenerationError, LLMError
from behaviorlab.generate.config import GenerateConfig
from behaviorlab.generate.grounding import Grounding, TimeSlot, ground_profile, neighbourhood_stats
from behaviorlab.generate.manifest import (
    AttemptCounts,
    CopyFigures,
    ExemplarFacts,
    OutlierFigures,
    PrivacyFacts,
    RunData,
    RunManifest,
    ScenarioFacts,
    SyntheticFigures,
    TimeFigures,
    TokenFigures,
)
from behaviorlab.generate.outliers import markov_outliers
from behaviorlab.generate.output import check_completion, output_schema
from behaviorlab.generate.prompts import build_messages
from behaviorlab.generate.rules import DomainRules
from behaviorlab.generate.run_files import GENERATED_USER
from behaviorlab.generate.scenario import Scenario, parse_scenario
from behaviorlab.generate.store import (
    STORE_FORMAT,
    AttemptRecord,
    GroundingRecord,
    PreparedProfile,
    RunStore,
    SequenceKey,
)
from behaviorlab.llm.base import ChatRequest, ChatResult, Failure, LLMBackend, SamplingSettings
from behaviorlab.profiles.atus import load_atus_priors
from behaviorlab.profiles.diversity import diversity_report
from behaviorlab.profiles.episodes import Event, log_has_time, real_windows
from behaviorlab.profiles.infer import llm_personas
from behaviorlab.profiles.realstats import RealPriors, StratumStats, estimate_real_priors
from behaviorlab.profiles.sampling import PopulationConfig, sample_population
from behaviorlab.progress import ProgressReporter
from behaviorlab.schema import ACTION, HOUR_BINS, TIMESTAMP, USER, WEEKDAYS, EventLog, Population, Profile

STORE_FILE, PARQUET_FILE = "run.sqlite", "synthetic.parquet"
# Failures that say the backend itself is down (left after the backend's own retries), not that this
# profile's attempt went wrong: they are not recorded as attempts, and the run stops so that a re-run
# retries those profiles once the server is back.
BACKEND_DOWN = frozenset({"connection", "timeout", "rate_limited", "server_error", "auth", "not_found"})
# The other failures (a rejected request, an answer that breaks the schema) can be one profile's own and
# are recorded as its attempt, unless a whole batch says otherwise: see `_whole_batch_failure`.
WHOLE_BATCH = 2  # the fewest requests whose shared failure is evidence against the backend
SYNTHETIC_WEEK = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday: synthetic timestamps start here
MAX_DEFAULT_LENGTH = 10
_MAX_SEED = 2**31 - 1


def _max_tokens(length: int) -> int:
    """Room for the answer: a compact `"A12",` costs about 4 tokens; 8 per event leaves headroom,
    and a cut-off answer would be a wasted request."""
    return 16 + 8 * length


def request_seed(run_seed: int, profile_index: int, attempt: int, slot: int = 0) -> int:
    """A request's sampling seed: fixed by (run seed, profile, attempt, slot), whatever batch it runs in."""
    key = f"{run_seed}:{profile_index}:{attempt}" + (f":{slot}" if slot else "")  # slot 0: the seeds of one-sequence runs
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:4], "big") % _MAX_SEED


def default_length(log: EventLog) -> int:
    per_user = log.frame.group_by(USER).len().get_column("len")
    return int(max(2, min(MAX_DEFAULT_LENGTH, int(per_user.median() or 2))))


# How fast a run goes, not what it writes: a resume may change these.
SPEED_SETTINGS: dict[str, Any] = {"batch_size": True,
                                  "llm": {"parallel", "threads", "prompt_cache", "timeout_s", "connect_timeout_s"}}
# Keys added after runs were made, with the one behaviour there was before them: at that value they stay out
# of the fingerprint, so runs started before the key existed still resume.
BEFORE_THE_KEY: dict[str, Any] = {"grounding": "real", "time_weights": "counts_and_routine", "sequences_per_profile": 1}


def _output_settings(config: GenerateConfig) -> dict[str, Any]:
    """The settings that fix a run's output: the config minus SPEED_SETTINGS."""
    return config.model_dump(mode="json", exclude=SPEED_SETTINGS)


def _fingerprint(config: GenerateConfig, log: EventLog, model: str) -> str:
    """What fixes a run's output: its output settings, the model and the data."""
    settings = {key: value for key, value in _output_settings(config).items()
                if key not in BEFORE_THE_KEY or value != BEFORE_THE_KEY[key]}
    payload = json.dumps({"config": settings, "model": model, "data": log.row_hash(),
                          "events": log.n_events, "store format": STORE_FORMAT}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class RunResult:
    out_dir: Path
    synthetic: EventLog
    manifest: RunManifest


class RunContext:
    """Everything derived from the real log once per process (deterministic, so never stored)."""

    def __init__(self, log: EventLog, config: GenerateConfig) -> None:
        self.log = log
        self.config = config
        self.length = config.length or default_length(log)
        self.per_profile = config.sequences_per_profile
        self.n_profiles = -(-config.n_users // self.per_profile)
        self.has_time = log_has_time(log)
        self.scenario: Scenario = parse_scenario(config.scenario, log.vocabulary)
        self.priors: RealPriors = estimate_real_priors(log, self.length, config.n_strata, config.seed)
        self.population: Population = sample_population(self.priors, load_atus_priors(), PopulationConfig(
            n_profiles=self.n_profiles, seed=config.seed, diversity=config.diversity, n_neighbours=config.n_neighbours))
        self.rules = DomainRules.from_real(log.vocabulary.actions,
                                           (e.actions for episodes in self.priors.episodes.values() for e in episodes))
        self._stratum_stats: dict[int, StratumStats] = {}

    def slots_of(self, index: int) -> int:
        """Sequences profile `index` makes: sequences_per_profile, fewer for the last when n_users says so."""
        return min(self.per_profile, self.config.n_users - index * self.per_profile)

    def sequence_number(self, key: SequenceKey) -> int:
        """The sequence's place in the run (0 .. n_users - 1), which names its synthetic user."""
        return key[0] * self.per_profile + key[1]

    def stats_for(self, profile: Profile) -> StratumStats:
        """Counts behind habits, legend and time skeleton: exact over the neighbours, or DP per stratum."""
        if self.config.dp_epsilon is None:
            return neighbourhood_stats(self.priors, profile.neighbours)
        stratum = int(self.priors.strata[self.priors.users.index(profile.neighbours[0])])
        if stratum not in self._stratum_stats:
            rng = np.random.default_rng([self.config.seed, 7919, stratum])
            # Three tables are released (actions, transitions, time slots): each gets a third of epsilon.
            self._stratum_stats[stratum] = self.priors.stratum_stats(stratum, self.config.dp_epsilon / 3, rng)
        return self._stratum_stats[stratum]


def prepare_prompts(ctx: RunContext, store: RunStore, backend: LLMBackend) -> None:
    """Ground and render the prompt of every profile not yet in the store."""
    todo = [i for i in range(ctx.n_profiles) if i not in store.prepared()]
    if not todo:
        return
    profiles = [ctx.population.profiles[i] for i in todo]
    if ctx.config.persona == "llm":
        # persona requests get their own seeds: attempt -1 of each profile, so they never equal a sequence request's
        profiles = llm_personas(profiles, backend, [request_seed(ctx.config.seed, i, -1) for i in todo])
    store.add_profiles([prepare_profile(ctx, index, profile, backend) for index, profile in zip(todo, profiles, strict=True)])


def prepare_profile(ctx: RunContext, index: int, profile: Profile, backend: LLMBackend, persona_text: str | None = None
                    ) -> PreparedProfile:
    """Ground profile `index` and render its prompts (one per slot); `persona_text` (default: the profile's LLM
    persona when the config asks for one) joins the profile line of the prompt as data."""
    rng = np.random.default_rng([ctx.config.seed, index, 1])
    slots = ctx.slots_of(index)
    grounding = ground_profile(profile, ctx.priors, ctx.stats_for(profile), ctx.log.vocabulary, ctx.scenario,
                               length=ctx.length, has_time=ctx.has_time, n_exemplars=ctx.config.n_exemplars,
                               n_habits=ctx.config.n_habits, max_similarity=ctx.config.max_similarity, rng=rng,
                               grounded=ctx.config.grounding == "real",
                               routine_times=ctx.config.time_weights == "counts_and_routine", sequences=slots)
    if persona_text is None:
        persona_text = profile.persona if ctx.config.persona == "llm" else ""
    kwargs = {"length": ctx.length, "persona_text": persona_text}
    log = ctx.log
    compact = tuple(build_messages(profile, grounding, ctx.scenario, log.schema, log.vocabulary, compact=True,
                                   slot=slot, **kwargs) for slot in range(slots))
    plain = tuple(build_messages(profile, grounding, ctx.scenario, log.schema, log.vocabulary, compact=False,
                                 slot=slot, **kwargs) for slot in range(slots))
    return PreparedProfile(index, profile.to_json(), _grounding_record(grounding), compact,
                           output_schema(CodeBook(grounding.legend_actions), ctx.length),
                           sum(message_tokens(backend, m) for m in compact), sum(message_tokens(backend, m) for m in plain))


@dataclass(frozen=True)
class SequenceResult:
    """One sequence made outside a run (`behaviorlab serve`'s /generate): its attempts, the last one accepted
    when any was."""

    attempts: tuple[AttemptRecord, ...]

    @property
    def events(self) -> list[list[Any]] | None:
        """[action, weekday, hour_bin] per event of the accepted attempt; None when no attempt was accepted."""
        return self.attempts[-1].events


def generate_sequence(ctx: RunContext, index: int, profile: Profile, backend: LLMBackend,
                      persona_text: str | None = None) -> SequenceResult:
    """One synthetic sequence for `profile`, made as a run makes its sequence (index, 0): the same grounding,
    prompt, seeds per attempt (the run seed, `index`, the attempt), checks and up to max_attempts attempts.

    Nothing is stored. A backend that is down raises the LLMError a run stops with.
    """
    if not 0 <= index < ctx.n_profiles:
        raise GenerationError(f"Profile index {index} is outside the population (0..{ctx.n_profiles - 1})")
    prepared = prepare_profile(ctx, index, profile, backend, persona_text)
    records: list[AttemptRecord] = []
    for attempt in range(ctx.config.max_attempts):
        [request] = _requests(ctx, prepared, [(index, 0)], {(index, 0): attempt})
        [result] = backend.complete([request])
        if _backend_down(result):
            assert result.failure is not None
            raise _down_error(backend, [result.failure], 1)
        records.append(_attempt_record(ctx, prepared, 0, attempt, result))
        if records[-1].events is not None:
            break
    return SequenceResult(tuple(records))


def _grounding_record(grounding: Grounding) -> GroundingRecord:
    skeletons = (tuple(tuple(tuple(s) for s in slots) for slots in grounding.skeletons)
                 if grounding.skeletons is not None else None)
    return GroundingRecord(tuple(e.key for e in grounding.exemplars), grounding.habits, grounding.legend_actions,
                           skeletons, grounding.redundant_skipped)


def _skeleton(record: GroundingRecord, slot: int) -> tuple[TimeSlot, ...] | None:
    """A slot's time skeleton as TimeSlots (None for a position-only log)."""
    return tuple(TimeSlot(*s) for s in record.skeletons[slot]) if record.skeletons is not None else None


def _events_json(events: list[Event]) -> list[list[Any]]:
    return [[e.action, e.weekday, e.hour_bin] for e in events]


def _attempt_record(ctx: RunContext, prepared: PreparedProfile, slot: int, attempt: int, result: ChatResult) -> AttemptRecord:
    """What the store keeps of one attempt: the completion, its check, issues and accepted events."""
    seed = result.request.sampling.seed
    if result.completion is None:
        assert result.failure is not None  # a ChatResult holds exactly one of the two
        issue = (f"backend failure ({result.failure.kind}): {result.failure.message[:200]}", False)
        return AttemptRecord(prepared.idx, slot, attempt, seed, "failed", None,
                             f"{result.failure.kind}: {result.failure.message}", None, None, None, None, False, (issue,), None)
    completion = result.completion
    checked = check_completion(completion.text, CodeBook(prepared.grounding.legend), ctx.length,
                               _skeleton(prepared.grounding, slot), ctx.rules, truncated=completion.finish_reason == "length")
    return AttemptRecord(prepared.idx, slot, attempt, seed, "accepted" if checked.accepted else "rejected", completion.text,
                         None, completion.prompt_tokens, completion.prefix_cached_tokens, completion.completion_tokens,
                         completion.latency_s, checked.valid_before_repair, tuple((i.message, i.repaired) for i in checked.issues),
                         _events_json(checked.events) if checked.events is not None else None)


def _requests(ctx: RunContext, prepared: PreparedProfile, keys: list[SequenceKey],
              attempts: dict[SequenceKey, int]) -> list[ChatRequest]:
    """One profile's requests for the sequences `keys`, in slot order. With several, the first is computed whole
    and the others reuse its prefix: the same reuse on every run, since the group always starts whole."""
    config = ctx.config
    group = len(keys) > 1 or ctx.per_profile > 1
    return [ChatRequest(messages=prepared.messages[slot], json_schema=prepared.output_schema,
                        sampling=SamplingSettings(temperature=config.temperature, max_tokens=_max_tokens(ctx.length),
                                                  seed=request_seed(config.seed, index, attempts.get((index, slot), 0), slot)),
                        reuse_prefix=position > 0 if group else None)
            for position, (index, slot) in enumerate(keys)]


def _generate(ctx: RunContext, store: RunStore, backend: LLMBackend, progress: ProgressReporter | None) -> None:
    config = ctx.config
    prepared = {p.idx: p for p in store.profiles()}
    attempts = store.attempts_made()
    accepted = set(store.accepted())
    keys = [(p.idx, slot) for p in prepared.values() for slot in range(p.slots)]

    def still_pending() -> list[SequenceKey]:
        return [k for k in keys if k not in accepted and attempts.get(k, 0) < config.max_attempts]

    pending = still_pending()
    total = config.n_users
    started, tokens_done, done_at_start = time.perf_counter(), 0, total - len(pending)
    while pending:
        batch = _whole_profiles(pending, config.batch_size)
        requests = []
        for index, group in groupby(batch, key=lambda key: key[0]):
            requests += _requests(ctx, prepared[index], list(group), attempts)
        batch_start = time.perf_counter()
        results = backend.complete(requests, _batch_progress(progress, total - len(pending), total))
        whole = _whole_batch_failure(results, any_accepted=bool(accepted))
        if whole is not None:
            raise _whole_batch_error(backend, whole, len(results))
        down = [r.failure for r in results if _backend_down(r)]
        records = [_attempt_record(ctx, prepared[index], slot, attempts.get((index, slot), 0), result)
                   for (index, slot), result in zip(batch, results, strict=True) if not _backend_down(result)]
        tokens_done += sum(r.completion_tokens or 0 for r in records)
        store.record_batch(records, time.perf_counter() - batch_start)
        for record in records:
            attempts[record.key] = record.attempt + 1
            if record.events is not None:
                accepted.add(record.key)
        if down:
            raise _down_error(backend, down, len(batch))
        pending = still_pending()
        if progress is not None:
            elapsed = time.perf_counter() - started
            done = total - len(pending)
            per_sequence = elapsed / max(done - done_at_start, 1)
            progress(done, total, {"accepted": len(accepted), "tokens_per_s": round(tokens_done / max(elapsed, 1e-9), 1),
                                   "eta_s": round(per_sequence * len(pending), 1)})


def _whole_profiles(pending: list[SequenceKey], batch_size: int) -> list[SequenceKey]:
    """The next batch: the pending sequences of whole profiles, up to `batch_size` of them (at least one profile's),
    so that a profile's group of requests is never split over two batches (and its prefix reuse stays the same)."""
    batch: list[SequenceKey] = []
    for index, group in groupby(pending, key=lambda key: key[0]):  # pending is in (profile, slot) order
        group = list(group)
        if batch and len(batch) + len(group) > batch_size:
            break
        batch += group
    return batch


def _backend_down(result: ChatResult) -> bool:
    return result.failure is not None and result.failure.kind in BACKEND_DOWN


def _whole_batch_failure(results: list[ChatResult], any_accepted: bool) -> Failure | None:
    """The failure that every request of a batch met, when that makes it the backend's fault, not the profiles'.

    A rejected request or a schema-breaking answer can be one profile's own (a prompt too long for the
    context, an unlucky sample). But when every request of a batch of WHOLE_BATCH or more fails with the
    same kind and none succeeds, the cause is what the requests share (server, model, parameters):
    - a rejected request (or any other such kind) at any point of the run: every request of a run has
      the same form, so a server that refuses a whole batch refuses the form, not a prompt;
    - a schema-breaking answer only until the run's first accepted sequence: a backend that has once
      answered within the schema honours it, and a later batch of bad answers is sampling bad luck that
      the next attempts cure (stopping for it could block the run for good: a resumed batch has the same
      seeds, so a deterministic server gives the same answers).
    A lone request says nothing about the server and is always recorded. Failures that say the backend
    is down are left to BACKEND_DOWN, which stops the run on any one of them.
    """
    failures = [r.failure for r in results if r.failure is not None]
    if len(failures) < max(WHOLE_BATCH, len(results)):
        return None
    first = failures[0]
    if any(f.kind != first.kind for f in failures) or first.kind in BACKEND_DOWN:
        return None
    return None if first.kind == "invalid_output" and any_accepted else first


def _whole_batch_error(backend: LLMBackend, failure: Failure, n: int) -> LLMError:
    who = f"The LLM backend ({backend.name}, {backend.model})"
    detail = f"{failure.kind}: {failure.message[:200]}"
    resume = "Nothing of this batch was recorded: once that is fixed, re-run the same command and it resumes."
    if failure.kind == "invalid_output":
        return LLMError(f"{who} does not honour the JSON schema: all {n} requests of a batch came back with output "
                        f"that breaks it: {detail}",
                        hint="The server ignores response_format/json_schema, or the model cannot follow the schema. "
                             "Use a server that constrains output to a JSON schema (vLLM, llama.cpp server, SGLang), "
                             'or set structured_output = "prompt" in the [llm] config to put the schema in the prompt '
                             f"(a changed setting needs a new --out folder). {resume}")
    if failure.kind == "bad_request":
        return LLMError(f"{who} rejected all {n} requests of a batch: {detail}",
                        hint="Every request of a run has the same form, so the server refuses that form (a parameter, "
                             "the model id, the context size), not one profile's prompt. Fix the server or the [llm] "
                             f"settings, check with `behaviorlab llm try`. {resume}")
    return LLMError(f"{who} failed all {n} requests of a batch the same way: {detail}",
                    hint=f"Check the backend with `behaviorlab llm try`. {resume}")


def _down_error(backend: LLMBackend, down: list[Failure], n: int) -> LLMError:
    return LLMError(f"The LLM backend ({backend.name}, {backend.model}) failed {len(down)} of {n} requests "
                    f"of a batch: {down[0].kind}: {down[0].message[:200]}",
                    hint="Finished sequences are saved. Check the server (behaviorlab llm try), then re-run the "
                         "same command: it resumes with the profiles that are still pending.")


def _batch_progress(progress: ProgressReporter | None, done: int, total: int) -> ProgressReporter | None:
    """The backend's reports while a batch is out, passed on as the run's status: what it is waiting for."""
    if progress is None:
        return None

    def report(answered: int, requests: int, info: Mapping[str, float | str] | None = None) -> None:
        waiting = (info or {}).get("waiting")
        progress(done, total, {"waiting": str(waiting) if waiting else f"{answered} of {requests} requests of the "
                                                                      "batch back"})

    return report


def _synthetic_log(ctx: RunContext, sequences: dict[int, list[list[Any]]]) -> EventLog:
    """The accepted sequences (by sequence number) as an EventLog with the real log's schema and vocabulary."""
    schema = ctx.log.schema
    rows: dict[str, list[Any]] = {column: [] for column in schema.columns}
    for index, events in sorted(sequences.items()):
        day_offset, previous_day, slot_counts = 0, None, Counter((e[1], e[2]) for e in events)
        seen_in_slot: Counter = Counter()
        for position, (action, weekday, hour_bin) in enumerate(events):
            if weekday is not None and previous_day is not None:
                day_offset += (weekday - previous_day) % 7
            previous_day = weekday if weekday is not None else previous_day
            rows[USER].append(GENERATED_USER.format(index=index))
            rows[ACTION].append(action)
            minute = 180 * seen_in_slot[(weekday, hour_bin)] // max(slot_counts[(weekday, hour_bin)], 1)
            seen_in_slot[(weekday, hour_bin)] += 1
            if schema.time == TIMESTAMP:
                first_day = events[0][1] or 0
                rows[TIMESTAMP].append(
                    SYNTHETIC_WEEK + timedelta(days=first_day + day_offset, hours=3 * hour_bin, minutes=minute)
                    if weekday is not None and hour_bin is not None else SYNTHETIC_WEEK + timedelta(minutes=position))
            else:
                rows[schema.time].append(position)
            for column, kind in schema.extras.items():
                rows[column].append(_extra_value(column, kind, action, weekday, hour_bin, minute))
    frame = pl.DataFrame(rows, schema=schema.dtypes())
    return EventLog(frame, schema, ctx.log.vocabulary)


def _extra_value(column: str, kind: str, action: str, weekday: int | None, hour_bin: int | None, minute: int) -> Any:
    """Extras a synthetic event can honestly have; every other extra stays null."""
    if column == "weekday" and weekday is not None:
        return WEEKDAYS[weekday]
    if column == "hour_bin" and hour_bin is not None:
        return HOUR_BINS[hour_bin]
    if column == "local_hour" and hour_bin is not None:
        return 3 * hour_bin + minute // 60
    if column == "device" and ":" in action:
        return action.split(":", 1)[0]
    if column == "utc_offset_min" and kind == "int":
        return 0
    if column == "split" and kind == "str":
        return "synthetic"
    return None


def _finish(ctx: RunContext, store: RunStore, backend: LLMBackend, out_dir: Path, wall_s: float) -> RunResult:
    from behaviorlab.datasets import write_event_log

    config = ctx.config
    sequences = {ctx.sequence_number(key): events for key, events in store.accepted().items()}
    windows = real_windows(ctx.log, ctx.length)
    copies = sorted(i for i, events in sequences.items() if tuple(e[0] for e in events) in windows)
    kept = {i: e for i, e in sequences.items() if not (config.copies == "reject" and i in copies)}
    outliers = None
    if config.outlier_filter and kept:
        order = sorted(kept)
        outliers = markov_outliers(ctx.log, [[e[0] for e in kept[i]] for i in order])
        for position in outliers.dropped:
            kept.pop(order[position])
    synthetic = _synthetic_log(ctx, kept)
    write_event_log(synthetic, out_dir / PARQUET_FILE)
    manifest = _manifest(ctx, store, backend, copies, outliers, len(kept), wall_s)
    manifest.write(out_dir)
    return RunResult(out_dir, synthetic, manifest)


def _manifest(ctx: RunContext, store: RunStore, backend: LLMBackend, copies: list[int], outliers, kept: int,
              wall_s: float) -> RunManifest:
    config = ctx.config
    totals = store.totals()
    profiles = store.profiles()
    attempts, accepted = store.attempts_made(), store.accepted()
    pending = sum(1 for p in profiles for slot in range(p.slots)
                  if (p.idx, slot) not in accepted and attempts.get((p.idx, slot), 0) < config.max_attempts)
    cost = PromptCost(sum(p.compressed_tokens for p in profiles), sum(p.plain_tokens for p in profiles),
                      sum(p.slots for p in profiles) * ctx.length)
    exemplars = sorted({key for p in profiles for key in p.grounding.exemplars})
    per_accepted = max(totals["accepted"], 1)
    issue_counts = Counter(message.split(":")[0].split(" (")[0][:60] for message, _ in totals["issues"])
    completed = totals["accepted"] + totals["rejected"]
    return RunManifest(
        config=config.model_dump(mode="json"),
        backend=backend.name, model=backend.model, seed=config.seed,
        # The exact real log the run was grounded on: `experiment` pairs the run only with cells of that subset.
        data=RunData(schema=ctx.log.schema.model_dump(mode="json"), real_users=ctx.log.n_users,
                     real_events=ctx.log.n_events, grounding_digest=ctx.log.digest()),
        sequence_length=ctx.length,
        scenario=ScenarioFacts(names=config.scenario, text=ctx.scenario.text, bins=sorted(ctx.scenario.bins),
                               days=sorted(ctx.scenario.days)),
        population=diversity_report(ctx.population, ctx.priors) | {"diversity": config.diversity},
        attempts=AttemptCounts(**{k: totals[k] for k in ("attempts", "accepted", "rejected", "failed")}),
        profiles=ctx.n_profiles, sequences_per_profile=ctx.per_profile,
        validity_rate_before_repair=round(totals["valid_before_repair"] / max(totals["attempts"], 1), 4),
        validity_rate_before_repair_of_completions=round(totals["valid_before_repair"] / max(completed, 1), 4),
        validity_rate_after_repair=round(totals["accepted"] / max(totals["attempts"], 1), 4),
        complete=pending == 0,
        pending_sequences=pending,
        sequences_missing=config.n_users - totals["accepted"] - pending,  # every attempt at them failed
        issues=dict(issue_counts.most_common()),
        domain_rules={"enforced": sorted(ctx.rules.enforced),
                      "real_repeat_rates": {k: round(v, 4) for k, v in ctx.rules.real_rates.items()}},
        tokens=TokenFigures(
            prompt=totals["prompt_tokens"], completion=totals["completion_tokens"],
            prefix_cache_hit_rate=round(totals["prefix_cached_tokens"] / max(totals["prompt_tokens"], 1), 4),
            prompt_tokens_per_generated_event_compressed=round(cost.compressed_per_event, 2),
            prompt_tokens_per_generated_event_plain_json=round(cost.plain_per_event, 2),
            compressed_over_plain=round(cost.ratio, 4),
            prompt_per_accepted_sequence=round(totals["prompt_tokens"] / per_accepted, 1),
            completion_per_accepted_sequence=round(totals["completion_tokens"] / per_accepted, 1),
            counted_with=f"{backend.name}:{backend.model} tokenizer (message text)"),
        time=TimeFigures(
            llm_wall_s=round(totals["llm_wall_s"], 2), this_invocation_wall_s=round(wall_s, 2),
            completion_tokens_per_s=round(totals["completion_tokens"] / max(totals["llm_wall_s"], 1e-9), 2),
            accepted_sequences_per_minute=round(60 * totals["accepted"] / max(totals["llm_wall_s"], 1e-9), 2)),
        copies=CopyFigures(policy=config.copies, count=len(copies), sequences=copies),
        outliers=OutlierFigures(**outliers.to_dict()) if outliers is not None else None,
        synthetic=SyntheticFigures(sequences=kept, events=kept * ctx.length, file=PARQUET_FILE),
        privacy=PrivacyFacts(
            dp_epsilon=config.dp_epsilon,
            covers=("Laplace noise on per-stratum count tables behind habits, legend and time skeleton "
                    "(actions, transitions, time slots; epsilon/3 each, one episode per user)")
            if config.dp_epsilon is not None else "nothing: no differential privacy requested",
            not_covered="the exemplars below are real records shown verbatim in prompts; stratum "
                        "assignment and neighbour choice use exact data"),
        exemplars_in_prompts=ExemplarFacts(count=len(exemplars), records=exemplars),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _changed_settings(before: Mapping[str, Any], now: Mapping[str, Any], prefix: str = "") -> list[str]:
    """`key: before -> now` for every setting that differs (nested tables key by key); a key the run's
    manifest lacks was added to behaviorlab after the run was made."""
    changed = []
    for key, value in now.items():
        if not prefix and key not in before and key in BEFORE_THE_KEY and BEFORE_THE_KEY[key] == value:
            continue  # added since, and set to the behaviour the run was made with
        old = before.get(key, "(not in the run: added since)")
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            changed += _changed_settings(old, value, f"{prefix}{key}.")
        elif old != value:
            changed.append(f"{prefix}{key}: {json.dumps(old)} -> {json.dumps(value)}")
    return changed


def _with_changed_settings(refused: GenerationError, out_dir: Path, config: GenerateConfig) -> GenerationError:
    """The refusal, with the settings that differ from the run's manifest when it has one (the store keeps
    only a hash of them)."""
    try:
        before = RunManifest.read(out_dir).config
    except (OSError, DataError):
        return refused
    changed = _changed_settings(before, _output_settings(config))
    if not changed:
        return refused  # the data or the model differ, not the settings
    return GenerationError(f"{refused.message}; settings that differ from its manifest: {'; '.join(changed)}",
                           hint="Give the run's settings again (--config or flags) to resume it, or choose a new "
                                "--out directory.")


def run_generation(log: EventLog, out_dir: str | Path, config: GenerateConfig, backend: LLMBackend,
                   progress: ProgressReporter | None = None, *, partial: bool = False) -> RunResult:
    """Generate (or resume generating) `config.n_users` synthetic sequences into `out_dir`.

    `partial=True` generates nothing more: it writes the log and manifest of the work finished so far
    (the manifest says `complete: false`); running again without it resumes and completes the run.
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if log.n_users < 2:
        raise GenerationError("Generation needs a real log with at least two users",
                              hint="Load more data, or check the --split filter.")
    with exclusive_writer(out_dir, "the generation run"):
        ctx = RunContext(log, config)
        store = RunStore(out_dir / STORE_FILE)
        try:
            try:
                store.claim(_fingerprint(config, log, backend.model))
            except GenerationError as refused:
                raise _with_changed_settings(refused, out_dir, config) from None
            prepare_prompts(ctx, store, backend)
            if not partial:
                _generate(ctx, store, backend, progress)
            return _finish(ctx, store, backend, out_dir, time.perf_counter() - started)
        finally:
            store.close()

