"""The command line: strict JSON, the cache flag, one-line errors with exit code 2, compare's columns."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from engine_helpers import run_cli, strict_json

import vg_core.data as data
from vg_core.cli import main
from vg_core.data import DataError
from vg_core.train import resolve_device

SMALL = ["--dataset", "mnist-sample", "--depth", "2", "--width", "16", "--probe-size", "100"]
LAYER_KEYS = {"weight_grad_norm_init", "weight_grad_norm_final", "act_std_final", "saturated_or_dead_final"}


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_run_json_is_strict_and_complete_and_then_cached(isolated_cache):
    """The real entry point, `python -m vg_core run ... --epochs 0 --json`, twice."""
    first = run_cli("run", *SMALL, "--epochs", "0", "--json", "--quiet", cache_dir=isolated_cache)
    assert first.returncode == 0, first.stderr
    payload = strict_json(first.stdout)  # refuses NaN / Infinity
    assert payload["spec"]["depth"] == 2 and payload["spec"]["epochs"] == 0
    assert payload["spec"]["device"] == payload["device"] == resolve_device("auto").type  # auto, resolved
    assert len(payload["key"]) == 16 and payload["cached"] is False
    assert payload["status"] == "complete" and payload["diverged_at_step"] is None
    assert {"name", "source", "n_train", "n_test"} <= set(payload["dataset"])
    assert payload["dataset"]["name"] == "mnist-sample"
    assert payload["dataset"]["n_train"] == 4000 and payload["dataset"]["n_test"] == 1000
    assert {"train_loss", "test_loss", "test_acc"} <= set(payload["final"])
    assert 0 <= payload["final"]["test_acc"] <= 1 and payload["final"]["test_loss"] > 0
    layers = payload["layers"]
    assert [layer["layer"] for layer in layers] == ["fc1", "fc2", "fc3"]
    assert [layer["index"] for layer in layers] == [1, 2, 3]
    for layer in layers:
        assert set(layer) >= LAYER_KEYS
        assert layer["weight_grad_norm_init"] > 0
        assert layer["weight_grad_norm_init"] == layer["weight_grad_norm_final"]  # zero epochs
    assert layers[-1]["act_std_final"] is None  # the output layer has no activation: null, not NaN
    assert layers[0]["act_std_final"] > 0
    assert 0 <= layers[0]["saturated_or_dead_final"] <= 1
    assert (isolated_cache / payload["key"]).is_dir()

    second = run_cli("run", *SMALL, "--epochs", "0", "--json", "--quiet", cache_dir=isolated_cache)
    assert second.returncode == 0, second.stderr
    again = strict_json(second.stdout)
    assert again["cached"] is True
    assert {k: v for k, v in again.items() if k != "cached"} == {k: v for k, v in payload.items() if k != "cached"}


def test_run_in_process_reports_cached_on_the_second_call(capsys):
    code, out, _ = run_main(capsys, "run", *SMALL, "--epochs", "1", "--n-train", "200", "--json", "--quiet")
    assert code == 0
    first = strict_json(out)
    assert first["cached"] is False and first["spec"]["epochs"] == 1 and first["status"] == "complete"
    assert first["layers"][0]["weight_grad_norm_init"] != first["layers"][0]["weight_grad_norm_final"]
    code, out, _ = run_main(capsys, "run", *SMALL, "--epochs", "1", "--n-train", "200", "--json", "--quiet")
    assert code == 0 and strict_json(out)["cached"] is True


def test_run_prints_a_table_and_verdicts(capsys):
    code, out, _ = run_main(capsys, "run", *SMALL, "--epochs", "0", "--quiet")
    assert code == 0
    assert out.startswith("sigmoid 2x16 default-init on mnist-sample (4,000 train / 1,000 test")
    assert "grad norm @init" in out and "fc3" in out
    assert "final test accuracy" in out
    assert (
        "- Gradient reaches the input: at step 0 fc1's ∂L/∂W norm is" in out
    )  # a verdict, in English; 0 epochs: no learning verdict
    assert "Stalled" not in out and "learning" not in out


def test_cache_dir_flag(capsys, tmp_path):
    folder = tmp_path / "elsewhere"
    code, out, _ = run_main(capsys, "run", *SMALL, "--epochs", "0", "--json", "--quiet", "--cache-dir", str(folder))
    assert code == 0 and (folder / strict_json(out)["key"]).is_dir()


def test_diverged_run_json_is_strict(capsys):
    argv = ["run", "--dataset", "mnist-sample", "--n-train", "400", "--batch-size", "50", "--epochs", "1"]
    argv += ["--depth", "3", "--width", "32", "--probe-size", "100", "--activation", "linear"]
    argv += ["--init", "normal", "--init-std", "1", "--lr", "1", "--json", "--quiet"]
    code, out, _ = run_main(capsys, *argv)
    assert code == 0
    payload = strict_json(out)
    assert payload["status"] == "diverged" and isinstance(payload["diverged_at_step"], int)
    first = payload["verdicts"][0]
    assert first["key"] == "diverged" and first["level"] == "error"
    assert first["values"]["step"] == payload["diverged_at_step"] and first["text"].startswith("Diverged at step")
    assert all(set(verdict) == {"key", "level", "text", "values"} for verdict in payload["verdicts"])


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["run", "--depth", "abc"], ["depth", "'abc'"]),
        (["run", "--activation", "nope"], ["activation", "'nope'"]),
        (["run", "--lr", "-1"], ["lr", "'-1'", "1e-07 to 10"]),
        (["run", "--bogus"], ["unrecognized arguments: --bogus"]),
        (["run", "--width", "0"], ["width", "1 to 4096"]),
        (["run", "--depth", "100", "--width", "4096"], ["width/depth", "parameters"]),
        (["run", "--residual", "maybe"], ["unrecognized arguments: maybe"]),
        (["run", "--epochs"], ["--epochs", "expected one argument"]),
        (["fly"], ["invalid choice: 'fly'"]),
        ([], ["required: command"]),
        (["compare", "--activations", "sigmoid,nope"], ["activation", "'nope'"]),
    ],
)
def test_bad_flags_exit_2_with_one_line(capsys, argv, names):
    code, out, err = run_main(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("vg_core: error: ")
    for name in names:
        assert name in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["run", "--depth", "abc"], ["run", "--bogus"]])
def test_bad_flags_in_a_real_process_exit_2_without_traceback(argv, isolated_cache):
    done = run_cli(*argv, cache_dir=isolated_cache)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert ("depth" if "--depth" in argv else "--bogus") in done.stderr


def test_data_error_exits_1_with_one_line(capsys, monkeypatch):
    def unavailable(name):
        raise DataError("Fashion-MNIST is not available: no network")

    monkeypatch.setattr(data, "load_raw", unavailable)
    code, out, err = run_main(capsys, "run", *SMALL, "--epochs", "0", "--quiet")
    assert code == 1 and out == ""
    assert err == "vg_core: data error: Fashion-MNIST is not available: no network\n"


@pytest.mark.parametrize(
    "error", [MemoryError(), torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")]
)
def test_out_of_memory_exits_1_with_one_line(capsys, monkeypatch, error):
    def exhausted(*args, **kwargs):
        raise error

    monkeypatch.setattr(data, "load", exhausted)
    code, out, err = run_main(capsys, "compare", *SMALL, "--epochs", "0", "--quiet")
    assert code == 1 and out == ""
    name = type(error).__name__
    assert err == f"vg_core: error: out of memory ({name}); use a smaller width, depth or batch\n"


def test_help_exits_0(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["run", "--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert "--activation" in out and "--init-std" in out and "--json" in out
    # each range as the errors write it: whole numbers in full, others as :g
    assert "0..2147483647 (default 0)" in out and "1e-07..10 (default 0.01)" in out


def test_help_and_a_bad_flag_answer_without_importing_the_engine():
    """`--help` and a flag error come from the parser alone: torch (about 2 s to import) is loaded only to run."""
    code = (
        "import sys, vg_core.cli as cli\n"
        "try:\n    cli.main(['reproduce', '--help'])\nexcept SystemExit as done:\n    assert done.code == 0\n"
        "assert cli.main(['run', '--no-such-flag']) == 2\n"
        "sys.exit(3 if 'torch' in sys.modules else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:] or "torch was imported"
    assert "glorot-init" in done.stdout and "unrecognized arguments: --no-such-flag" in done.stderr


def test_compare_prints_one_column_per_activation(capsys):
    code, out, _ = run_main(capsys, "compare", *SMALL, "--epochs", "0", "--activations", "sigmoid,relu,tanh", "--quiet")
    assert code == 0
    lines = out.splitlines()
    header = lines[0]
    labels = ["sigmoid 2x16 default-init", "relu 2x16 default-init", "tanh 2x16 default-init"]
    positions = [header.index(label) for label in labels]
    assert positions == sorted(positions)  # in the order asked for
    rows = {line.split("  ")[0].strip(): line for line in lines[2:]}
    assert {"fc1", "fc2", "fc3", "test accuracy", "diverged at step"} <= set(rows)
    for name in ("fc1", "test accuracy"):
        assert len(rows[name].split()) - len(name.split()) == 3  # one value per activation
    for label in labels:  # then each run's verdicts, in English
        assert f"\n{label}:\n- " in out and "at step 0 fc1's ∂L/∂W norm is" in out.split(f"\n{label}:\n")[1]


def test_compare_json_lists_every_run(capsys):
    argv = ["compare", *SMALL, "--epochs", "0", "--activations", "relu", "--inits", "default,kaiming_normal"]
    code, out, _ = run_main(capsys, *argv, "--json", "--quiet")
    assert code == 0
    payload = strict_json(out)
    assert [(p["spec"]["activation"], p["spec"]["init"]) for p in payload] == [
        ("relu", "default"),
        ("relu", "kaiming_normal"),
    ]
    assert all(p["cached"] is False for p in payload)
    assert all(v["key"].startswith("flow.") and v["values"]["step"] == 0 for p in payload for v in p["verdicts"])


def test_flags_are_never_abbreviated(capsys):
    from vg_core.cli import main

    assert main(["sweep", "--init", "kaiming_normal", "--depths", "2"]) == 2
    assert "--init" in capsys.readouterr().err
