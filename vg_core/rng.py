"""torch's global random generator, one for the whole process and shared by its threads: seeded draws, and its
state kept across a probe. Both hold one lock, so that two runs at once (two visitors' trainings, a comparison
trained side by side) never draw from each other's seed, nor restore a state in the middle of another's draws.
A module that draws while training (dropout) is not covered by the lock; none of vg_core's models has one."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

import torch

_lock = threading.Lock()


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Draw from the CPU generator seeded by `seed`; its state before is restored afterwards."""
    with _lock, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def kept(cuda_devices: Sequence[torch.device] = ()) -> Iterator[None]:
    """The CPU generator's state (and those of `cuda_devices`) as it was, afterwards: a dropout layer's draws
    inside do not shift the training's. Unlike `seeded`, the lock is not held inside, only to save and restore."""
    with _lock:
        saved = torch.get_rng_state(), [torch.cuda.get_rng_state(device) for device in cuda_devices]
    try:
        yield
    finally:
        with _lock:
            torch.set_rng_state(saved[0])
            for device, state in zip(cuda_devices, saved[1]):
                torch.cuda.set_rng_state(state, device)
