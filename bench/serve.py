"""Load test of `behaviorlab serve` /predict: the peak sustained throughput, then 80% of it held, batching on vs off.

    flock /tmp/behaviorlab-heavy.lock [taskset -c 1] nice -n 0 .venv/bin/python bench/serve.py
        [--data ../shared/datasets/smartthings-fr] [--out /tmp/behaviorlab-bench-serve] [--modes on,off]
        [--step-seconds 10] [--hold-seconds 60] [--start-rate 50] [--rate-factor 1.5] [--max-rate 4000]
        [--torch-threads N] [--batch-wait-ms MS] [--connections 64] [--timeout 5]

A SASRec is trained on the FR train split (weekday and hour-bin context, `--train-budget` seconds), or
reused from `--out`. For each mode the server is started as its own process on a free 127.0.0.1 port,
and this process drives it open-loop: request i is due at t0 + i / rate whatever the earlier answers
did, over a pool of keep-alive connections (at most `--connections`), and its latency runs from the
time it was due to its last response byte, so waiting for a connection or behind a slow server counts.
The bodies are the FR test split's first 9 events with the 10th event's weekday and hour bin, k=10.
The load generator runs on uvloop when installed and reports its own CPU per request. By default it shares
the cores with the server (`taskset -c 1` pins both to one core); `--server-cpus 1 --client-cpus 0` gives each its
own core, so the generator's lag (due time to request written) does not count the server's work against it.

The peak search offers rates start, start*factor, ... for `--step-seconds` each. A step passes when no
request failed (status other than 200, connection error, or no answer within `--timeout` of its due
time), the responses completed inside the step's window are at least 95% of those offered, and the p99
latency is at most 100 ms (a server that falls behind shows growing latency before it drops requests). The search
stops at the first failing step (when the start rate fails it goes down by the factor instead, to
`--min-rate`), then tries the geometric mean of the highest passing and the lowest failing rate above it
once; the peak is the highest passing rate (a lower bound, marked so, when no step failed below `--max-rate`). Between steps the server's backlog drains (/healthz answers
within 50 ms). Then 80% of the peak is held for `--hold-seconds`: latency
p50/p99 on the client and from the server's /metrics histogram, mean batch size, server CPU per
request, errors, and the server's resident memory (VmRSS) at the start and end of the hold.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PASS_SHARE = 0.95  # a step passes when at least this share of the offered requests completed in its window
PASS_P99_S = 0.1  # and its p99 latency stays under this (5x the target): above, a backlog grows through the step
HOLD_SHARE = 0.8  # the hold offers this share of the peak
SASREC_CONFIG = 'context_columns = ["weekday", "hour_bin"]\n'
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
KEEP_ALIVE_S = 4.0  # idle connections older than this are not reused (uvicorn closes them after 5 s)


# -- pure parts -----------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-th percentile (0 < q <= 100) of `values`; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]


@dataclass
class Step:
    """What one offered rate gave."""

    rate: float  # offered requests per second
    seconds: float
    offered: int = 0
    ok_in_window: int = 0  # 200 answers completed before the window closed
    errors: Counter = field(default_factory=Counter)  # kind -> count
    latencies: list[float] = field(default_factory=list)  # seconds, of 200 answers, from due time
    lags: list[float] = field(default_factory=list)  # seconds from due time to the request being written

    @property
    def achieved(self) -> float:
        return self.ok_in_window / self.seconds

    @property
    def n_errors(self) -> int:
        return sum(self.errors.values())

    def passes(self) -> bool:
        return (self.n_errors == 0 and self.ok_in_window >= PASS_SHARE * self.offered
                and percentile(self.latencies, 99) <= PASS_P99_S)


def find_peak(measure: Callable[[float], Step], start: float, factor: float, top: float, floor: float) -> list[Step]:
    """The search's steps: rates start*factor^i upward while they pass (to `top`), or downward from a failing
    start until one passes (to `floor`); then the geometric mean of the highest pass and the lowest fail above it."""
    steps = [measure(start)]
    if steps[0].passes():
        while steps[-1].passes() and steps[-1].rate * factor <= top:
            steps.append(measure(round(steps[-1].rate * factor, 1)))
    else:
        while not steps[-1].passes() and steps[-1].rate / factor >= floor:
            steps.append(measure(round(steps[-1].rate / factor, 1)))
    peak = peak_rate(steps)
    above = [step.rate for step in steps if not step.passes() and step.rate > (peak or 0)]
    if peak is not None and above:
        steps.append(measure(round(math.sqrt(peak * min(above)), 1)))
    return steps


def peak_rate(steps: Sequence[Step]) -> float | None:
    """The highest offered rate that passed; None when none did."""
    return max((step.rate for step in steps if step.passes()), default=None)


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float:
    """Prometheus-style quantile (0..1) of a cumulative histogram [(upper bound, count <= bound)], linear inside a bucket."""
    total = buckets[-1][1] if buckets else 0
    if total <= 0:
        return math.nan
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / max(count - below, 1e-12)
        lower, below = bound, count
    return lower


def parse_histogram(text: str, name: str, label: str) -> tuple[list[tuple[float, float]], float, float]:
    """([(le, cumulative count)], sum, count) of the series `name` with `label` in Prometheus text."""
    buckets, total, count = [], 0.0, 0.0
    for line in text.splitlines():
        if label not in line:
            continue
        key, _, value = line.rpartition(" ")
        if key.startswith(f"{name}_bucket"):
            le = key.split('le="')[1].split('"')[0]
            buckets.append((math.inf if le == "+Inf" else float(le), float(value)))
        elif key.startswith(f"{name}_sum"):
            total = float(value)
        elif key.startswith(f"{name}_count"):
            count = float(value)
    return buckets, total, count


def histogram_delta(after: tuple, before: tuple) -> tuple[list[tuple[float, float]], float, float]:
    """after - before of two parse_histogram results (before may be empty)."""
    earlier = dict(before[0])
    return ([(le, n - earlier.get(le, 0.0)) for le, n in after[0]], after[1] - before[1], after[2] - before[2])


# -- the server process ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def http_get(port: int, path: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET {path}: {head[:80]!r}")
    return body.decode()


def settle(port: int, quick: float = 0.05, within: float = 30.0) -> None:
    """Wait until the server answers /healthz within `quick` seconds (the backlog of an overloaded step is done)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        started = time.monotonic()
        http_get(port, "/healthz")
        if time.monotonic() - started < quick:
            return
        time.sleep(0.2)


class Server:
    """`behaviorlab serve` in its own process on a free 127.0.0.1 port."""

    def __init__(self, model: Path, extra: list[str], log: Path, errors: Path, cpus: set[int] | None = None) -> None:
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, (str(REPO / "src"), os.environ.get("PYTHONPATH")))))
        command = [sys.executable, "-m", "behaviorlab", "serve", "--model", f"sasrec={model}", "--host", "127.0.0.1",
                   "--port", str(self.port), "--access-log", str(log), *extra]
        if cpus:  # taskset execs the server: the pid stays the server's
            command = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *command]
        self.errors = errors
        with errors.open("w") as stderr:
            self.process = subprocess.Popen(command, env=env, stderr=stderr)
        deadline = time.monotonic() + 120
        while True:
            try:
                http_get(self.port, "/healthz")
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the server exited: {self.errors.read_text()}") from None
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the server did not answer /healthz within 120 s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- the open-loop load generator -----------------------------------------------------------------
class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.last_used = time.monotonic()

    async def exchange(self, request: bytes) -> int:
        """Send one request, read its whole response; the status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        self.last_used = time.monotonic()
        return int(head[9:12])

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Keep-alive connections, at most `size`; a request waits for a free one."""

    def __init__(self, port: int, size: int) -> None:
        self.port, self.size, self.opened = port, size, 0
        self.idle: deque[Connection] = deque()
        self.waiting: deque[asyncio.Future] = deque()

    async def acquire(self) -> Connection:
        while self.idle:
            connection = self.idle.pop()
            if time.monotonic() - connection.last_used < KEEP_ALIVE_S:
                return connection
            self.discard(connection)  # the server may have closed it: a request on it would fail for no fault of its own
        if self.opened < self.size:
            self.opened += 1
            try:
                return Connection(*await asyncio.open_connection("127.0.0.1", self.port))
            except OSError:
                self.opened -= 1
                raise
        waiter = asyncio.get_running_loop().create_future()
        self.waiting.append(waiter)
        return await waiter

    def release(self, connection: Connection) -> None:
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self.idle.append(connection)

    def discard(self, connection: Connection) -> None:
        connection.close()
        self.opened -= 1

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


def predict_requests(bodies: Sequence[bytes]) -> list[bytes]:
    return [b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body) for body in bodies]


async def offer(port: int, requests: Sequence[bytes], rate: float, seconds: float, connections: int,
                timeout: float) -> Step:
    """Offer `rate` requests per second for `seconds`, open-loop; wait for the last answers (or their timeout)."""
    # Times come from perf_counter, not loop.time(): uvloop's clock is libuv's, in whole milliseconds and read once
    # per loop iteration, which would round and understate latencies.
    clock = time.perf_counter
    pool, step = Pool(port, connections), Step(rate, seconds)
    start = clock() + 0.05
    end = start + seconds

    async def one(request: bytes, due: float) -> None:
        connection = None
        try:
            async with asyncio.timeout(due + timeout - clock()):
                connection = await pool.acquire()
                step.lags.append(clock() - due)
                status = await connection.exchange(request)
        except TimeoutError:
            step.errors["timeout"] += 1
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            step.errors[type(exc).__name__] += 1
        else:
            pool.release(connection)
            connection = None
            if status != 200:
                step.errors[f"status {status}"] += 1
                return
            done = clock()
            step.latencies.append(done - due)
            step.ok_in_window += done <= end
        finally:
            if connection is not None:  # a timed-out or broken exchange may still be answered: drop it
                pool.discard(connection)

    tasks = []
    for i in range(int(rate * seconds)):
        due = start + i / rate
        if due > clock():
            await asyncio.sleep(due - clock())
        tasks.append(asyncio.create_task(one(requests[i % len(requests)], due)))
    step.offered = len(tasks)
    await asyncio.gather(*tasks)
    pool.close()
    return step


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_loop(coroutine: Coroutine[Any, Any, Step]) -> Step:
    """Run `coroutine` on uvloop's event loop when installed (the serve extra has it: less of the load generator's
    CPU, which shares the cores with the server), else asyncio's. The cyclic garbage collector is off while it
    runs: a full collection of the generator's own heap would hold back every request due meanwhile, a pause
    that is the instrument's, not the server's (reference counting still frees the per-request objects)."""
    gc.collect()
    gc.disable()
    try:
        try:
            import uvloop
        except ImportError:
            return asyncio.run(coroutine)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coroutine)
    finally:
        gc.enable()


# -- one mode: peak search, then the hold ---------------------------------------------------------
def print_step(label: str, step: Step) -> None:
    errors = ", ".join(f"{k} {v}" for k, v in sorted(step.errors.items())) or "0"
    print(f"  {label} offered {step.rate:7.1f}/s  achieved {step.achieved:7.1f}/s  p50 {percentile(step.latencies, 50) * 1e3:7.2f} ms"
          f"  p99 {percentile(step.latencies, 99) * 1e3:8.2f} ms  errors {errors}  -> {'pass' if step.passes() else 'FAIL'}",
          flush=True)


def run_mode(name: str, model: Path, extra: list[str], requests: list[bytes], args: argparse.Namespace) -> dict:
    log = args.out / f"access-{name}.jsonl"
    log.unlink(missing_ok=True)
    server = Server(model, extra, log, args.out / f"stderr-{name}.txt", args.server_cpus)
    try:
        rss_idle = rss_mib(server.process.pid)
        print(f"\nmode {name}: serve {' '.join(extra) or '(defaults)'} (pid {server.process.pid}, port {server.port}, "
              f"RSS {rss_idle:.1f} MiB)", flush=True)

        def measure(rate: float) -> Step:
            step = run_loop(offer(server.port, requests, rate, args.step_seconds, args.connections, args.timeout))
            print_step("search", step)
            settle(server.port)
            return step

        steps = find_peak(measure, args.start_rate, args.rate_factor, args.max_rate, args.min_rate)
        peak = peak_rate(steps)
        if peak is None:
            print(f"  no rate down to --min-rate {args.min_rate:g}/s passed: no hold", flush=True)
            return {"mode": name, "rss_idle_mib": rss_idle}
        hold_rate = round(HOLD_SHARE * peak, 1)
        series = ("behaviorlab_request_duration_seconds", 'route="/predict"')
        batches = ("behaviorlab_batch_size", 'model="sasrec"')
        before = http_get(server.port, "/metrics")
        rss_start, cpu_start, client_start = rss_mib(server.process.pid), cpu_seconds(server.process.pid), own_cpu_seconds()
        hold = run_loop(offer(server.port, requests, hold_rate, args.hold_seconds, args.connections, args.timeout))
        rss_end, cpu_end, client_end = rss_mib(server.process.pid), cpu_seconds(server.process.pid), own_cpu_seconds()
        after = http_get(server.port, "/metrics")
        print_step("hold  ", hold)
    finally:
        server.stop()
    latency = histogram_delta(parse_histogram(after, *series), parse_histogram(before, *series))
    batch = histogram_delta(parse_histogram(after, *batches), parse_histogram(before, *batches))
    return {"mode": name, "peak": peak, "peak_bounded": any(not step.passes() for step in steps), "hold_rate": hold_rate, "achieved": hold.achieved, "offered": hold.offered,
            "errors": hold.n_errors, "p50_ms": percentile(hold.latencies, 50) * 1e3,
            "p99_ms": percentile(hold.latencies, 99) * 1e3, "max_ms": max(hold.latencies, default=math.nan) * 1e3,
            "lag_p99_ms": percentile(hold.lags, 99) * 1e3,
            "server_p50_ms": histogram_quantile(latency[0], 0.5) * 1e3,
            "server_p99_ms": histogram_quantile(latency[0], 0.99) * 1e3,
            "server_mean_ms": latency[1] / latency[2] * 1e3 if latency[2] else math.nan,
            "mean_batch": batch[1] / batch[2] if batch[2] else 1.0,
            "cpu_ms_per_request": (cpu_end - cpu_start) / max(hold.offered, 1) * 1e3,
            "client_cpu_ms_per_request": (client_end - client_start) / max(hold.offered, 1) * 1e3,
            "rss_idle_mib": rss_idle, "rss_start_mib": rss_start, "rss_end_mib": rss_end,
            "rss_growth": rss_end / rss_start - 1}


def cpu_set(text: str) -> set[int]:
    """'0,1' -> {0, 1}: an argument of --server-cpus / --client-cpus."""
    try:
        return {int(part) for part in text.split(",")}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CPU numbers separated by commas, e.g. 0 or 0,1; got {text!r}") from None


# -- the model and the request bodies -------------------------------------------------------------
def trained_model(data: Path, out: Path, budget: float) -> Path:
    """A SASRec trained on `data`'s train split (reused when `out/sasrec` holds one; an interrupted run resumes)."""
    from behaviorlab.models.base import MANIFEST

    model = out / "sasrec"
    if (model / MANIFEST).is_file():
        return model
    config = out / "sasrec.toml"
    config.write_text(SASREC_CONFIG, encoding="utf-8")
    command = [sys.executable, "-m", "behaviorlab", "train", "-m", "sasrec", "-d", str(data), "-o", str(model),
               "--config", str(config), "--time-budget", str(budget), "--threads", "2"]
    if (model / "checkpoint.pt").is_file():
        command.append("--resume")
    print(f"training: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, env=dict(os.environ, PYTHONPATH=str(REPO / "src")), check=True, stdout=subprocess.DEVNULL)
    return model


def test_bodies(data: Path) -> list[bytes]:
    """One /predict body per FR test sequence: its first 9 events, the 10th's weekday and hour bin, k=10."""
    from behaviorlab.datasets import load
    from behaviorlab.sequences import make_split

    test = make_split(load(data), "published", context_columns=["weekday", "hour_bin"]).test
    return [json.dumps({"history": history, "k": 10, "context": {"weekday": str(weekday), "hour_bin": str(hour)}}).encode()
            for history, weekday, hour in zip(test.histories, test.context["weekday"], test.context["hour_bin"], strict=True)]


def print_table(rows: list[dict]) -> None:
    for row in rows:
        row.setdefault("peak_text", f"{'' if row.get('peak_bounded', True) else '>='}{row['peak']:.1f}" if "peak" in row else "-")
    columns = [("mode", "mode", "{}"), ("peak/s", "peak_text", "{}"), ("hold/s", "hold_rate", "{:.1f}"),
               ("achieved/s", "achieved", "{:.1f}"), ("errors", "errors", "{}"), ("p50 ms", "p50_ms", "{:.2f}"),
               ("p99 ms", "p99_ms", "{:.2f}"), ("max ms", "max_ms", "{:.1f}"), ("srv p50", "server_p50_ms", "{:.2f}"),
               ("srv p99", "server_p99_ms", "{:.2f}"), ("srv mean", "server_mean_ms", "{:.2f}"),
               ("lag p99", "lag_p99_ms", "{:.2f}"), ("batch", "mean_batch", "{:.1f}"),
               ("cpu ms/req", "cpu_ms_per_request", "{:.2f}"), ("client cpu", "client_cpu_ms_per_request", "{:.2f}"), ("RSS idle", "rss_idle_mib", "{:.1f}"),
               ("RSS start", "rss_start_mib", "{:.1f}"), ("RSS end", "rss_end_mib", "{:.1f}"),
               ("RSS growth", "rss_growth", "{:+.2%}")]
    cells = [[fmt.format(row[key]) if key in row else "-" for _, key, fmt in columns] for row in rows]
    widths = [max(len(title), *(len(c[i]) for c in cells)) for i, (title, _, _) in enumerate(columns)]
    print(" | ".join(title.rjust(w) for (title, _, _), w in zip(columns, widths, strict=True)))
    for c in cells:
        print(" | ".join(cell.rjust(w) for cell, w in zip(c, widths, strict=True)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "datasets" / "smartthings-fr")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "behaviorlab-bench-serve")
    parser.add_argument("--modes", default="on,off", help="on (micro-batching), off (--no-batching), in this order")
    parser.add_argument("--step-seconds", type=float, default=10.0)
    parser.add_argument("--hold-seconds", type=float, default=60.0)
    parser.add_argument("--start-rate", type=float, default=50.0)
    parser.add_argument("--rate-factor", type=float, default=1.5)
    parser.add_argument("--max-rate", type=float, default=4000.0)
    parser.add_argument("--min-rate", type=float, default=5.0, help="the search goes no lower when --start-rate fails")
    parser.add_argument("--connections", type=int, default=64, help="most keep-alive connections of the load generator")
    parser.add_argument("--timeout", type=float, default=5.0, help="a request unanswered this long after its due time fails")
    parser.add_argument("--torch-threads", type=int, default=None, help="serve --torch-threads (default: serve's)")
    parser.add_argument("--batch-wait-ms", type=float, default=None, help="serve --batch-wait-ms (default: serve's)")
    parser.add_argument("--train-budget", type=float, default=60.0, help="seconds of SASRec training when none is saved")
    parser.add_argument("--server-cpus", type=cpu_set, default=None, help="CPUs of the server, e.g. 1 (default: this process's)")
    parser.add_argument("--client-cpus", type=cpu_set, default=None, help="CPUs of the load generator, e.g. 0 (default: all it has)")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",")]
    if not modes or set(modes) - {"on", "off"}:
        parser.error(f"--modes takes on and/or off, got {args.modes!r}")
    args.out.mkdir(parents=True, exist_ok=True)
    began, load_before = time.monotonic(), os.getloadavg()
    model = trained_model(args.data, args.out, args.train_budget)
    if args.client_cpus:  # after training, which may use every core
        os.sched_setaffinity(0, args.client_cpus)
    requests = predict_requests(test_bodies(args.data))
    common = [*(["--torch-threads", str(args.torch_threads)] if args.torch_threads else []),
              *(["--batch-wait-ms", str(args.batch_wait_ms)] if args.batch_wait_ms is not None else [])]
    print(f"{len(requests)} distinct FR test requests; step {args.step_seconds:g} s, hold {args.hold_seconds:g} s; "
          f"pass rule: 0 errors, >= {PASS_SHARE:.0%} of offered completed in the step and p99 <= {PASS_P99_S * 1e3:g} ms; "
          f"hold at {HOLD_SHARE:.0%} of peak",
          flush=True)
    rows = [run_mode(mode, model, common + (["--no-batching"] if mode == "off" else []), requests, args) for mode in modes]
    load_after = os.getloadavg()
    placement = (f"server on CPUs {sorted(args.server_cpus or os.sched_getaffinity(0))}, "
                 f"load generator on CPUs {sorted(os.sched_getaffinity(0))}")
    print(f"\nSASRec on {args.data.name}, {placement}, load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; {time.monotonic() - began:.0f} s in all")
    print_table(rows)
    by_mode = {row["mode"]: row for row in rows if "peak" in row}
    if {"on", "off"} <= set(by_mode):
        on, off = by_mode["on"], by_mode["off"]
        print(f"batching on / off: peak x{on['peak'] / off['peak']:.2f}, p99 at 80% x{on['p99_ms'] / off['p99_ms']:.2f}, "
              f"CPU per request x{on['cpu_ms_per_request'] / off['cpu_ms_per_request']:.2f}")
    for row in rows:
        verdict = "peak" in row and row["p99_ms"] <= 20 and row["errors"] == 0 and row["rss_growth"] < 0.05
        print(f"target (p99 <= 20 ms, 0 errors, RSS growth < 5%) with batching {row['mode']}: {'met' if verdict else 'MISSED'}")
    (args.out / "results.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
