"""The CUDA path: same measurements as the CPU, divergence caught despite lazy syncs. Skipped without a GPU
(no CI machine has one; these run on a lent GPU machine)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vg_core import side_by_side
from vg_core.spec import RunSpec
from vg_core.train import resolve_device, train

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
SPEC = RunSpec(dataset="mnist-sample", n_train=1000, depth=5, width=256, epochs=1, probe_size=200)


def test_auto_picks_cuda():
    assert resolve_device("auto").type == "cuda"


def test_cuda_probes_match_cpu_at_initialisation():
    cpu = train(SPEC.replace(device="cpu", epochs=0))
    gpu = train(SPEC.replace(device="cuda", epochs=0))
    assert gpu.meta["device"].startswith("cuda")
    for quantity in ("weight_grad_norm", "grad_out_norm", "act_std", "pre_act_mean"):
        np.testing.assert_allclose(gpu.stat(quantity, 0), cpu.stat(quantity, 0), rtol=2e-3, atol=1e-7)
    counts = ["step", "layer", "quantity", "bin_start"]
    merged = cpu.histograms.merge(gpu.histograms, on=counts, suffixes=("_cpu", "_gpu"))
    assert merged["count_cpu"].sum() == merged["count_gpu"].sum()


def test_cuda_training_learns_like_cpu():
    cpu = train(SPEC.replace(device="cpu", activation="relu", init="kaiming_normal"))
    gpu = train(SPEC.replace(device="cuda", activation="relu", init="kaiming_normal"))
    assert gpu.meta["status"] == "complete"
    assert abs(gpu.history["test_acc"].iloc[-1] - cpu.history["test_acc"].iloc[-1]) < 0.05
    assert gpu.snapshot_steps == cpu.snapshot_steps


def test_cuda_divergence_is_caught_at_the_right_step():
    spec = SPEC.replace(activation="relu", init="normal", init_std=1.0, lr=10.0, momentum=0.9, epochs=2)
    gpu = train(spec.replace(device="cuda"))
    assert gpu.meta["status"] == "diverged"
    losses = gpu.steps.set_index("step")["loss"]
    first_bad = losses[~np.isfinite(losses)].index.min()
    assert gpu.diverged_at_step == first_bad
    assert np.isfinite(losses[losses.index < first_bad]).all()


def test_cuda_runs_side_by_side_train_what_they_train_alone():
    """The CLI's compare trains side by side on a GPU, each run on its own stream (vg_core.side_by_side)."""
    specs = [SPEC.replace(device="cuda", activation=name) for name in ("sigmoid", "relu", "swish")]
    alone = [train(spec) for spec in specs]
    together = side_by_side.run_all([lambda stop, spec=spec: train(spec) for spec in specs], torch.device("cuda"))
    for a, b in zip(alone, together, strict=True):
        assert b.meta["status"] == "complete"
        for quantity in ("weight_grad_norm", "grad_out_norm", "act_std"):
            np.testing.assert_allclose(
                b.stat(quantity, b.snapshot_steps[-1]), a.stat(quantity, a.snapshot_steps[-1]), rtol=1e-5
            )
        np.testing.assert_allclose(b.history["test_acc"], a.history["test_acc"], atol=1e-6)
