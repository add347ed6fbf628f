"""A comparison's runs trained side by side (vg_core.side_by_side): the same numbers as one after another, in
order; one run's failure, or Ctrl-C, stops the others and is raised. On the CPU the threads are asked for
explicitly (the CLI trains side by side only on a GPU: tests/test_gpu.py checks it there)."""

from __future__ import annotations

import _thread
import itertools
import threading

import pandas as pd
import pytest
import torch
from engine_helpers import tiny_spec

from vg_core import side_by_side
from vg_core.results import FRAMES, RunResult
from vg_core.spec import RunSpec
from vg_core.train import Progress, train

CPU = torch.device("cpu")
SPECS = [
    tiny_spec(activation="sigmoid"),
    tiny_spec(activation="relu", init="kaiming_normal", seed=1),
    tiny_spec(model="cnn", activation="relu", depth=2, width=4, n_train=200),
    RunSpec(model="lstm", dataset="mnist-sample", n_train=200, width=16, epochs=1, batch_size=50, probe_size=50),
]
LONG = tiny_spec(n_train=4000, epochs=20, batch_size=10)  # long enough to be cut short
LONG_STEPS = 20 * 4000 // 10


def trainer(spec: RunSpec, seen: list[str] | None = None, steps: list[int] | None = None):
    """A job training `spec`, stopping when asked; it notes the thread it ran on in `seen`, each step in `steps`."""

    def job(stop: threading.Event) -> RunResult:
        if seen is not None:
            seen.append(threading.current_thread().name)

        def callback(progress: Progress) -> bool:
            if steps is not None:
                steps.append(progress.step)
            return stop.is_set()

        return train(spec, callback)

    return job


def assert_same(a: RunResult, b: RunResult) -> None:
    assert a.spec == b.spec
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), obj=name)


def test_side_by_side_trains_exactly_what_one_after_another_trains():
    alone = [train(spec) for spec in SPECS]
    seen: list[str] = []
    together = side_by_side.run_all([trainer(spec, seen) for spec in SPECS], CPU, side_by_side=True)
    assert sorted(seen) == [f"vg-run-{index}" for index in range(len(SPECS))]  # each in a thread of its own
    for a, b in zip(alone, together, strict=True):
        assert b.meta["status"] == "complete"
        assert_same(a, b)


def test_on_a_cpu_runs_train_one_after_another_in_the_calling_thread():
    assert not side_by_side.on(CPU)
    assert side_by_side.on(torch.device("cuda"))
    seen: list[str] = []
    results = side_by_side.run_all([trainer(spec, seen) for spec in SPECS[:2]], CPU)
    assert seen == [threading.current_thread().name] * 2
    assert [result.spec for result in results] == SPECS[:2]


def test_a_failing_run_stops_the_others_and_its_error_is_raised():
    stopped: list[RunResult] = []
    steps: list[int] = []

    def survivor(stop: threading.Event) -> RunResult:
        stopped.append(trainer(LONG, steps=steps)(stop))
        return stopped[-1]

    def failing(stop: threading.Event) -> RunResult:
        raise MemoryError("no room")

    with pytest.raises(MemoryError, match="no room"):
        side_by_side.run_all([survivor, failing], CPU, side_by_side=True)
    assert stopped[0].meta["status"] == "stopped"
    assert max(steps) < LONG_STEPS


def test_ctrl_c_stops_every_run_before_it_is_raised():
    ended: list[RunResult] = []
    steps: list[int] = []

    def interrupting(stop: threading.Event) -> RunResult:
        def callback(progress: Progress) -> bool:
            if progress.step == 5:
                _thread.interrupt_main()  # Ctrl-C, as the calling thread receives it
            return stop.is_set()

        ended.append(train(LONG, callback))
        return ended[-1]

    def other(stop: threading.Event) -> RunResult:
        ended.append(trainer(LONG, steps=steps)(stop))
        return ended[-1]

    with pytest.raises(KeyboardInterrupt):
        side_by_side.run_all([other, interrupting], CPU, side_by_side=True)  # both started by then
    assert sorted(result.meta["status"] for result in ended) == ["stopped", "stopped"]
    assert max(steps) < LONG_STEPS


def test_on_a_gpu_each_run_has_a_stream_of_its_own_that_waits_for_the_callers(monkeypatch):
    """The CUDA calls, with torch.cuda stood in for (no CI machine has a GPU; tests/test_gpu.py trains there)."""
    calls: list[tuple] = []
    numbers = itertools.count()  # next() on it is atomic
    current = threading.local()

    class FakeStream:
        def __init__(self, device=None) -> None:
            self.name = f"stream-{next(numbers)}"
            calls.append(("new", self.name, str(device)))

        def wait_stream(self, other) -> None:
            calls.append(("wait", self.name, other))

        def synchronize(self) -> None:
            calls.append(("synchronize", self.name))

    class FakeContext:
        def __init__(self, stream) -> None:
            self.stream = stream

        def __enter__(self) -> None:
            current.stream = self.stream.name

        def __exit__(self, *exc) -> None:
            current.stream = None

    monkeypatch.setattr(torch.cuda, "Stream", FakeStream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: "caller's stream")
    monkeypatch.setattr(torch.cuda, "stream", FakeContext)

    def job(value: int):
        return lambda stop: (value, current.stream)

    results = side_by_side.run_all([job(0), job(1), job(2)], torch.device("cuda"))
    assert [value for value, _ in results] == [0, 1, 2]
    streams = [stream for _, stream in results]
    assert len(set(streams)) == 3  # each job ran inside a stream of its own
    for stream in streams:
        assert ("wait", stream, "caller's stream") in calls
        assert ("synchronize", stream) in calls
