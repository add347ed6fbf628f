"""A comparison's runs trained side by side on one GPU: a thread per run, each on its own CUDA stream.

At the article's batch of 100 a GPU finishes each kernel long before Python launches the next, so one run
leaves it idle most of the time (9 % of an H200's matmul rate; README, "Speed and memory"). Side by side, one
run's Python launches while another's kernels run: torch lets go of the GIL inside every operation, and each
run's stream keeps its kernels in order while the streams overlap. Each run computes what it computes alone
(exactly, with the threads forced on a CPU: tests/test_side_by_side.py; on a GPU: tests/test_gpu.py). On a CPU
the runs would only share its cores, so there they train one after another.

A job is told to stop through the threading.Event it is given: a training callback that returns `stop.is_set()`
ends its run at the next step (train.train), so that Ctrl-C, or one run's failure, does not wait for the others.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

T = TypeVar("T")
WAKE_S = 0.1  # the calling thread looks for Ctrl-C this often while the runs train


def on(device: torch.device) -> bool:
    """Whether a comparison's runs on `device` train side by side (module docstring)."""
    return device.type == "cuda"


def run_all(
    jobs: Sequence[Callable[[threading.Event], T]], device: torch.device, side_by_side: bool | None = None
) -> list[T]:
    """Every job's return value, in order: side by side on a GPU, one after another elsewhere (`side_by_side`
    decides instead where given: the benchmark measures both ways).

    The first job to raise asks the others to stop, and its exception is raised once all have ended; so is
    a KeyboardInterrupt in the calling thread."""
    stop = threading.Event()
    if not (on(device) if side_by_side is None else side_by_side) or len(jobs) < 2:
        return [job(stop) for job in jobs]
    results: list[T | None] = [None] * len(jobs)
    errors: list[BaseException | None] = [None] * len(jobs)
    ended = [threading.Event() for _ in jobs]
    cuda = device.type == "cuda"
    ready = torch.cuda.current_stream(device) if cuda else None  # where the caller made what the jobs may read

    def work(index: int) -> None:
        stream = torch.cuda.Stream(device) if cuda else None
        try:
            if stream is not None:
                stream.wait_stream(ready)
            with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
                results[index] = jobs[index](stop)
            if stream is not None:
                stream.synchronize()
        except BaseException as err:  # handed to the caller, which raises it
            errors[index] = err
            stop.set()
        finally:
            ended[index].set()

    threads = [threading.Thread(target=work, args=(index,), name=f"vg-run-{index}") for index in range(len(jobs))]
    try:
        for thread in threads:
            thread.start()
        _wait(ended)
    except KeyboardInterrupt:
        stop.set()
        _wait([event for event, thread in zip(ended, threads) if thread.ident is not None])  # those started
        raise
    first = next((err for err in errors if err is not None), None)
    if first is not None:
        raise first
    return results  # type: ignore[return-value]  # every job returned


def _wait(events: Sequence[threading.Event]) -> None:
    """Until every event is set, a Ctrl-C let through every WAKE_S. (Not Thread.join: on Python 3.11 a join cut
    short by Ctrl-C marks a thread that is still running as ended, and a second join returns at once.)"""
    for event in events:
        while not event.wait(WAKE_S):
            pass
