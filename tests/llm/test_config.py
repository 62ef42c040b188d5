"""The [llm] defaults that depend on the machine: threads from physical cores, not hardware threads."""

import os

from behaviorlab.llm.config import LLMConfig, physical_cores


def _cpuinfo(tmp_path, cores_of_processors: list[int]):
    """A /proc/cpuinfo with one block per logical processor, each naming its core on socket 0."""
    blocks = [f"processor\t: {p}\nphysical id\t: 0\ncore id\t\t: {core}\n" for p, core in enumerate(cores_of_processors)]
    path = tmp_path / "cpuinfo"
    path.write_text("\n".join(blocks))
    return path


def test_threads_follow_physical_cores_among_the_allowed_cpus(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert physical_cores(_cpuinfo(tmp_path, [0, 1, 2, 3])) == 4  # no SMT: a thread per logical CPU
    assert physical_cores(_cpuinfo(tmp_path, [0, 0, 1, 1, 2, 2, 3, 3])) == 2  # SMT: processors 0-3 are 2 cores
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {2, 3})
    assert physical_cores(_cpuinfo(tmp_path, [0, 1, 2, 3])) == 2  # only the CPUs this process may use


def test_without_core_ids_half_the_allowed_cpus_are_taken(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    bare = tmp_path / "cpuinfo"
    bare.write_text("processor\t: 0\nBogoMIPS\t: 50\n\nprocessor\t: 1\nBogoMIPS\t: 50\n")
    assert physical_cores(bare) == 4
    assert physical_cores(tmp_path / "missing") == 4
    assert LLMConfig(threads=3).resolved_threads() == 3  # an explicit setting wins
