"""The command line against hostile input: every case ends in exit 2 and one line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from engine_helpers import REPO, run_cli

SMALL = ["--dataset", "mnist-sample", "--depth", "2", "--width", "8", "--probe-size", "50", "--quiet"]


def assert_one_line_error(process: subprocess.CompletedProcess, *needles: str) -> None:
    assert process.returncode == 2, process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vg_core: error: "), process.stderr
    assert "Traceback" not in process.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--activations", ""], "--activations: '' names none"),
        (["--activations", ",,,"], "--activations: ',,,' names none"),
        (["--inits", ""], "--inits: '' names none"),
    ],
)
def test_compare_with_an_empty_list_is_a_usage_error(isolated_cache, flags, needle):
    assert_one_line_error(run_cli("compare", *SMALL, "--epochs", "0", *flags, cache_dir=isolated_cache), needle)


def test_sweep_out_a_folder_is_refused_before_training(isolated_cache, tmp_path):
    flags = [flag for flag in SMALL if flag not in ("--depth", "2")]
    process = run_cli("sweep", *flags, "--depths", "2", "--out", str(tmp_path), cache_dir=isolated_cache)
    assert_one_line_error(process, f"--out: {tmp_path} is a folder")
    assert not isolated_cache.exists() or not any(p.is_dir() for p in isolated_cache.iterdir())  # nothing trained


def test_a_cache_dir_that_is_a_file_is_one_line(tmp_path):
    file = tmp_path / "hostname"
    file.write_text("x")
    process = run_cli("run", *SMALL, "--epochs", "0", "--cache-dir", str(file))
    assert_one_line_error(process, f"cache: {file} is not a folder")
    process = run_cli("run", *SMALL, "--epochs", "0", cache_dir=file)  # VG_CACHE_DIR
    assert_one_line_error(process, f"cache: {file} is not a folder")


def test_an_unwritable_cache_dir_warns_up_front_and_still_trains():
    process = run_cli("run", *SMALL, "--epochs", "0", "--json", "--cache-dir", "/proc/vg-cache")
    assert process.returncode == 0, process.stderr
    assert process.stderr.startswith("vg_core: warning: the cache folder /proc/vg-cache cannot be written")
    assert '"status": "complete"' in process.stdout


def test_a_closed_pipe_ends_quietly(isolated_cache):
    env = {**os.environ, "PYTHONPATH": str(REPO), "VG_CACHE_DIR": str(isolated_cache), "OMP_NUM_THREADS": "1"}
    command = f"{sys.executable} -m vg_core compare {' '.join(SMALL)} --epochs 0 --json | head -c 100"
    process = subprocess.run(["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert len(process.stdout) == 100
    assert "Traceback" not in process.stderr and "BrokenPipeError" not in process.stderr


def test_an_over_budget_run_is_refused_up_front_with_the_reason_and_the_limit(isolated_cache):
    issue = ["--dataset", "fashion-mnist", "--n-train", "60000", "--batch-size", "1", "--epochs", "100"]
    process = run_cli("run", *issue, "--depth", "100", "--width", "120", cache_dir=isolated_cache)
    assert_one_line_error(process, "6,000,000 training steps", "5,000,000 allowed")
    process = run_cli("run", *issue[:-1], "20", "--depth", "100", "--width", "120", cache_dir=isolated_cache)
    assert_one_line_error(process, "budget: this run would take about", "6.0 h allowed here (VG_CLI_BUDGET_S)")


def test_batch_norm_with_batches_of_one_is_refused_and_a_last_batch_of_one_trains(isolated_cache):
    process = run_cli("run", *SMALL, "--norm", "batch", "--batch-size", "1", "--epochs", "1", cache_dir=isolated_cache)
    assert_one_line_error(process, "batch_size: batch norm needs at least 2 samples per batch")
    process = run_cli(
        "run",
        *SMALL,
        "--norm",
        "batch",
        "--n-train",
        "101",
        "--batch-size",
        "50",
        "--epochs",
        "1",
        "--json",
        cache_dir=isolated_cache,
    )
    assert process.returncode == 0, process.stderr
    assert '"status": "complete"' in process.stdout
