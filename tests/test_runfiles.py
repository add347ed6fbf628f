"""Saved runs opened from a folder or a .zip: round trips, and every hostile archive refused with its message."""

from __future__ import annotations

import io
import json
import pickle
import stat
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from engine_helpers import as_watched, run_cli, strict_json, tiny_spec

from vg_core.results import FRAMES, RunResult
from vg_core.runfiles import (
    LIMITS,
    RUN_FILES,
    RunFileError,
    RunFileLimits,
    list_runs,
    load_folder,
    load_zip,
    open_listed,
    open_run,
    runs_dir,
)
from vg_core.train import train

MODULE_PATHS = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "fc"]


@pytest.fixture(scope="module")
def built_in() -> RunResult:
    return train(tiny_spec())


@pytest.fixture(scope="module")
def watched(built_in: RunResult) -> RunResult:
    return as_watched(built_in, MODULE_PATHS)


def run_files(result: RunResult, tmp_path: Path) -> dict[str, bytes]:
    folder = tmp_path / "saved"
    result.save(folder)
    return {name: (folder / name).read_bytes() for name in RUN_FILES}


def zipped(files: dict[str, bytes], prefix: str = "my-run/") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(prefix + name, data)
    return buffer.getvalue()


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def assert_same(loaded: RunResult, original: RunResult) -> None:
    assert loaded.spec == original.spec
    assert loaded.meta == original.meta
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(original, name))


def refused(data: bytes, match: str, limits: RunFileLimits = LIMITS) -> None:
    with pytest.raises(RunFileError, match=match):
        load_zip(data, limits)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("prefix", ["my-run/", ""])
def test_round_trip_through_zip(built_in: RunResult, tmp_path: Path, prefix: str) -> None:
    data = zipped(run_files(built_in, tmp_path), prefix)
    assert_same(load_zip(data), built_in)
    assert_same(load_zip(io.BytesIO(data)), built_in)  # a file object, as the page's upload is
    (tmp_path / "run.zip").write_bytes(data)
    assert_same(open_run(tmp_path / "run.zip"), built_in)
    assert_same(open_run(tmp_path / "saved"), built_in)


def test_round_trip_of_a_watched_run(watched: RunResult, tmp_path: Path) -> None:
    loaded = load_zip(zipped(run_files(watched, tmp_path)))
    assert_same(loaded, watched)
    assert loaded.spec is None and "spec" not in json.loads((tmp_path / "saved" / "meta.json").read_text())
    assert loaded.layer_names == MODULE_PATHS
    assert (loaded.label, loaded.key) == ("my-net", "watch-my-net-0123abcd")


def test_built_in_layer_names_fall_back_to_fc(built_in: RunResult) -> None:
    assert built_in.layer_names == ["fc1", "fc2", "fc3", "fc4"]  # depth 3: three hidden layers and the output


# ---------------------------------------------------------------- hostile archives


@pytest.mark.parametrize(
    "name", ["../meta.json", "my-run/../../etc/meta.json", "/tmp/meta.json", "my-run\\meta.json", "C:/meta.json"]
)
def test_path_traversal_names_are_refused(built_in: RunResult, tmp_path: Path, name: str) -> None:
    files = run_files(built_in, tmp_path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, files["meta.json"])
    refused(buffer.getvalue(), "not a safe file name")


def test_a_symlink_member_is_refused(built_in: RunResult, tmp_path: Path) -> None:
    files = run_files(built_in, tmp_path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(f"my-run/{name}")
            if name == "meta.json":
                info.create_system = 3  # unix: the mode in the high bits of external_attr
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                data = b"/etc/passwd"
            archive.writestr(info, data)
    refused(buffer.getvalue(), "symbolic link")


def test_a_zip_bomb_is_refused_on_its_declared_size(built_in: RunResult, tmp_path: Path) -> None:
    """A 1 GB stand-in: the central directory declares 1 GB (nothing that large is built or inflated)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in run_files(built_in, tmp_path).items():
            archive.writestr(f"my-run/{name}", data)
        archive.infolist()[-1].file_size = 2**30  # written into the central directory on close
    refused(buffer.getvalue(), "unpacks to more than 512 MB")


def test_a_member_that_inflates_too_much_is_refused(built_in: RunResult, tmp_path: Path) -> None:
    files = {**run_files(built_in, tmp_path), "histograms.parquet": bytes(8 * 2**20)}  # 8 MB of zeros: ~8 kB
    refused(zipped(files), "histograms.parquet inflates more than 100-fold")


def test_reading_stops_at_the_declared_size(built_in: RunResult, tmp_path: Path) -> None:
    """A member that declares 1 kB but inflates to 8 MB: read no further than 1 kB, then refused."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in {**run_files(built_in, tmp_path), "histograms.parquet": bytes(8 * 2**20)}.items():
            archive.writestr(f"my-run/{name}", data)
        archive.getinfo("my-run/histograms.parquet").file_size = 1024
    refused(buffer.getvalue(), "histograms.parquet")


def test_reading_stops_at_the_unpacked_limit(built_in: RunResult, tmp_path: Path) -> None:
    files = run_files(built_in, tmp_path)
    small = RunFileLimits(max_unpacked_bytes=len(files["histograms.parquet"]) - 1)
    refused(zipped(files), "more than", small)


def test_a_pickle_inside_is_refused(built_in: RunResult, tmp_path: Path) -> None:
    files = {**run_files(built_in, tmp_path), "model.pkl": pickle.dumps({"weights": [1, 2, 3]})}
    refused(zipped(files), "Unexpected file 'model.pkl'.*no other format is ever read")
    files = {**run_files(built_in, tmp_path), "weights.pt": b"PK"}
    refused(zipped(files), "Unexpected file 'weights.pt'")


def test_a_pickle_named_like_a_frame_is_refused(built_in: RunResult, tmp_path: Path) -> None:
    files = {**run_files(built_in, tmp_path), "history.parquet": pickle.dumps(built_in.history)}
    refused(zipped(files), "history.parquet is not a readable Parquet file")


def test_wrong_schemas_are_refused(built_in: RunResult, watched: RunResult, tmp_path: Path) -> None:
    files = run_files(built_in, tmp_path)
    renamed = built_in.histograms.rename(columns={"count": "n"})
    refused(zipped({**files, "histograms.parquet": parquet(renamed)}), "histograms.parquet has the columns")
    retyped = built_in.layer_stats.assign(value=built_in.layer_stats["value"].astype(str))
    refused(zipped({**files, "layer_stats.parquet": parquet(retyped)}), "column value has the type")
    refused(zipped({**files, "layer_stats.parquet": parquet(built_in.layer_stats.head(0))}), "no probe snapshot")
    meta = json.loads(files["meta.json"])
    bad_spec = {**meta, "spec": {**meta["spec"], "depth": -1}}
    refused(zipped({**files, "meta.json": json.dumps(bad_spec).encode()}), "spec is not one this version accepts")
    foreign = {key: value for key, value in meta.items() if key != "spec"}
    refused(zipped({**files, "meta.json": json.dumps(foreign).encode()}), "no spec and is not a watched run")
    refused(zipped({**files, "meta.json": b"[1, 2]"}), "not a JSON object")
    refused(zipped({**files, "meta.json": b'{"status": NaN}'}), "not valid JSON")
    refused(zipped({**files, "meta.json": b"\x80\x04"}), "not valid JSON")
    watched_files = run_files(watched, tmp_path)
    short = {**watched.meta, "layers": MODULE_PATHS[:2]}
    refused(zipped({**watched_files, "meta.json": json.dumps(short).encode()}), "names 2 layers where the frames")
    unsafe = {**watched.meta, "key": "../../x"}
    refused(zipped({**watched_files, "meta.json": json.dumps(unsafe).encode()}), "needs a key")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "The file is empty"),
        (b"just some text, not a zip", "Not a readable .zip archive"),
        (zipped({}), "The archive is empty"),
    ],
)
def test_empty_and_non_zip_uploads_are_refused(data: bytes, match: str) -> None:
    refused(data, match)


def test_layout_problems_are_refused(built_in: RunResult, tmp_path: Path) -> None:
    files = run_files(built_in, tmp_path)
    refused(zipped({"sub/" + name: data for name, data in files.items()}), "nested folder")
    two = {**{f"a/{name}": data for name, data in files.items()}, "b/meta.json": files["meta.json"]}
    refused(zipped(two, prefix=""), "several folders")
    refused(zipped({name: data for name, data in files.items() if name != "steps.parquet"}), "steps.parquet missing")
    many = {**files, **{f"extra{i}.txt": b"x" for i in range(20)}}
    refused(zipped(many), "entries")


def test_an_oversized_upload_is_refused_before_it_is_opened(built_in: RunResult, tmp_path: Path) -> None:
    assert LIMITS.max_archive_bytes == 200 * 2**20  # the page's upload limit (.streamlit/config.toml)
    data = zipped(run_files(built_in, tmp_path))
    refused(data, "larger than", RunFileLimits(max_archive_bytes=len(data) - 1))


# ---------------------------------------------------------------- folders and VG_RUNS_DIR


def test_a_folder_with_a_stranger_or_a_link_is_refused(built_in: RunResult, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    built_in.save(folder)
    (folder / "model.pkl").write_bytes(pickle.dumps(1))
    with pytest.raises(RunFileError, match=r"Unexpected file 'model\.pkl'"):
        load_folder(folder)
    (folder / "model.pkl").unlink()
    secret = tmp_path / "secret.parquet"
    (folder / "steps.parquet").rename(secret)
    (folder / "steps.parquet").symlink_to(secret)
    with pytest.raises(RunFileError, match=r"steps\.parquet is not a plain file"):
        load_folder(folder)


def test_runs_dir_lists_runs_and_never_leaves_the_folder(
    built_in: RunResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = tmp_path / "runs", tmp_path / "outside"
    built_in.save(root / "folder-run")
    built_in.save(outside)
    (root / "zipped-run.zip").write_bytes(zipped(run_files(built_in, tmp_path)))
    (root / "notes.txt").write_text("not a run")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "escape.zip").symlink_to(tmp_path / "elsewhere.zip")
    monkeypatch.setenv("VG_RUNS_DIR", str(root))
    assert runs_dir() == root
    assert list_runs(root) == ["folder-run", "zipped-run.zip"]
    assert_same(open_listed(root, "folder-run"), built_in)
    assert_same(open_listed(root, "zipped-run.zip"), built_in)
    for name in ("escape", "escape.zip", "../outside", str(outside), "notes.txt"):
        with pytest.raises(RunFileError, match="is not a saved run in"):
            open_listed(root, name)
    monkeypatch.setenv("VG_RUNS_DIR", "")
    assert runs_dir() is None
    assert list_runs(tmp_path / "missing") == []


# ---------------------------------------------------------------- `python -m vg_core show`


def test_show_prints_the_table_with_module_paths(watched: RunResult, tmp_path: Path) -> None:
    path = tmp_path / "my-net.zip"
    path.write_bytes(zipped(run_files(watched, tmp_path)))
    shown = run_cli("show", str(path))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("my-net (your own model and data), cpu, status complete")
    rows = [line.split()[0] for line in lines[2 : 2 + len(MODULE_PATHS)]]
    assert rows == MODULE_PATHS
    as_json = run_cli("show", str(tmp_path / "saved"), "--json")
    assert as_json.returncode == 0, as_json.stderr
    payload = strict_json(as_json.stdout)
    assert [layer["layer"] for layer in payload["layers"]] == MODULE_PATHS
    assert [layer["index"] for layer in payload["layers"]] == [1, 2, 3, 4]
    assert (payload["name"], payload["key"], payload["spec"], payload["dataset"]) == (
        "my-net",
        "watch-my-net-0123abcd",
        None,
        None,
    )


def test_show_matches_run_json_for_a_built_in_run(built_in: RunResult, tmp_path: Path) -> None:
    built_in.save(tmp_path / "run")
    shown = run_cli("show", str(tmp_path / "run"), "--json")
    assert shown.returncode == 0, shown.stderr
    payload = strict_json(shown.stdout)
    assert payload["key"] == built_in.spec.key() and payload["spec"] == built_in.spec.to_dict()
    assert [layer["layer"] for layer in payload["layers"]] == ["fc1", "fc2", "fc3", "fc4"]


def test_show_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    for path in (tmp_path / "missing", tmp_path / "bad.zip"):
        shown = run_cli("show", str(path))
        assert shown.returncode == 2 and shown.stdout == ""
        assert len(shown.stderr.strip().splitlines()) == 1
        assert shown.stderr.startswith(f"vg_core: error: cannot show {path}: ")
