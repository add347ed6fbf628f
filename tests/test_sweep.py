"""Depth sweep: every point cached, the table right, and an interrupted sweep resumes where it stopped."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from vg_core.cache import ResultCache, resolved
from vg_core.cli import main
from vg_core.spec import RunSpec, SpecError
from vg_core.sweep import Sweep, cached_table, epochs_to_fraction_of_best, parse_depths, run_sweep

BASE = RunSpec(dataset="mnist-sample", n_train=300, width=16, epochs=2, batch_size=50, probe_size=50)


def test_points_train_shallow_first_for_every_activation():
    sweep = Sweep(BASE, (5, 2), ("relu", "swish"))
    assert [(s.depth, s.activation) for s in sweep.points()] == [(2, "relu"), (2, "swish"), (5, "relu"), (5, "swish")]


def test_bad_sweeps_are_refused_with_a_message():
    with pytest.raises(SpecError, match="depths"):
        parse_depths("2,x")
    with pytest.raises(SpecError, match="depths"):
        parse_depths("0,500")
    with pytest.raises(SpecError, match="activation"):
        Sweep(BASE, (2,), ("nope",)).points()
    with pytest.raises(SpecError, match="points"):
        Sweep(BASE, tuple(range(1, 40)), ("relu", "swish"))


def test_epochs_to_90_percent_of_best():
    history = pd.DataFrame({"epoch": [0.0, 1.0, 2.0, 3.0], "test_acc": [0.1, 0.5, 0.95, 1.0]})
    assert epochs_to_fraction_of_best(history) == 2.0
    assert pd.isna(epochs_to_fraction_of_best(history[history["epoch"] == 0]))
    stalled = history.assign(test_acc=[0.1, 0.098, 0.113, 0.101])  # never above chance: no speed to report
    assert pd.isna(epochs_to_fraction_of_best(stalled))


def test_interrupted_sweep_resumes_where_it_stopped(isolated_cache):
    sweep = Sweep(BASE, (1, 3), ("relu", "sigmoid"))
    cache = ResultCache(isolated_cache)
    started = []

    def interrupt_third(index, count, spec):
        started.append(spec.key())
        if index == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, cache, interrupt_third)
    done, missing = cached_table(sweep, cache)
    assert len(done) == 2 and [s.key() for s in missing] == [s.key() for s in sweep.points()[2:]]

    trained = []

    def count_training(index, count, spec):
        return lambda progress: trained.append(spec.key()) and None

    table = run_sweep(sweep, cache, count_training)
    assert set(trained) == {s.key() for s in sweep.points()[2:]}  # only the two missing points trained
    assert list(table["key"]) == [resolved(s).key() for s in sweep.points()]
    assert table["test_acc"].between(0, 1).all()
    assert not table["diverged"].any()


def test_cli_sweep_prints_and_saves_the_table(tmp_path, capsys):
    out = tmp_path / "sweep.csv"
    flags = ["--dataset", "mnist-sample", "--n-train", "200", "--width", "8", "--epochs", "1", "--probe-size", "50"]
    code = main(["sweep", *flags, "--depths", "1,2", "--activations", "relu", "--out", str(out), "--json", "--quiet"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    table = pd.read_csv(out)
    assert list(table["depth"]) == [1, 2] and len(payload["points"]) == 2
    assert set(table.columns) >= {"depth", "activation", "test_acc", "grad_ratio_init", "epochs_to_90pct", "diverged"}
