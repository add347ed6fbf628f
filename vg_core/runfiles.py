"""Saved runs opened safely: a run's folder, or a .zip of it, read as Parquet + JSON only, nothing else.

A saved run is the folder RunResult.save writes: meta.json and one Parquet file per frame. Everything else
is refused with one plain-words RunFileError: other files (.pkl, .pt, ...), path tricks (../x, absolute
names, backslashes, symlinks), nested folders, archives that are too large or inflate too much (checked on
the declared sizes first, then while reading, which stops at the limit), unknown Parquet types, frames with
other columns, and meta.json of another kind of run.

Two kinds of run are accepted:
- a built-in run: meta["spec"] is a RunSpec the current code accepts (the engine's own training);
- a watched run, recorded by vg_core.watch on the user's own model. Its meta has no "spec" and says:
      "source": "watch"
      "name":   the user's name for the run, e.g. "my-net"
      "key":    a unique id of this recording (letters, digits, . _ -), e.g. "watch-my-net-3f2a9c1b"
      "layers": module paths of the recorded layers, index 0 <-> layer 1, e.g. ["conv1", "layer1.0.conv1", "fc"]
      "status": "complete" | "diverged" | "stopped"
  and may add "diverged_at_step", "total_steps", "steps_per_epoch", "steps_per_point", "device", "torch",
  "model", "n_parameters", "timings".
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from .results import FRAME_COLUMNS, FRAMES, RunResult
from .spec import RunSpec, SpecError

META_FILE = "meta.json"
RUN_FILES = (META_FILE, *(f"{name}.parquet" for name in FRAMES))
WATCH_SOURCE = "watch"
KEY_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,100}")
INT_COLUMNS = {"step", "layer", "t", "count"}
TEXT_COLUMNS = {"quantity"}  # every other column holds floats


@dataclass(frozen=True)
class RunFileLimits:
    """What one saved run may take; anything over a limit is refused before it is read."""

    max_archive_bytes: int = 200 * 2**20  # an upload (the .zip itself): the page's upload limit
    max_unpacked_bytes: int = 512 * 2**20  # all files of a run, uncompressed, summed
    max_ratio: float = 100.0  # uncompressed / compressed size of one zip member (Parquet hardly compresses)
    ratio_floor_bytes: int = 2**20  # members smaller than this may compress better (meta.json does)
    max_members: int = 2 * len(RUN_FILES)  # zip entries, folder entries included
    max_rows: int = 50_000_000  # rows of one frame
    max_parquet_bytes: int = 2 * 2**30  # one Parquet file's data once decoded (its own compression undone)


LIMITS = RunFileLimits()


class RunFileError(ValueError):
    """A saved run that cannot be opened; the text says why in plain words."""


def runs_dir() -> Path | None:
    """$VG_RUNS_DIR (a folder of saved runs the page lists), or None when unset."""
    value = os.environ.get("VG_RUNS_DIR", "").strip()
    return Path(value) if value else None


# ---------------------------------------------------------------- opening: a path, a .zip, a folder


def open_run(path: str | Path, limits: RunFileLimits = LIMITS) -> RunResult:
    """A saved run from its folder or from a .zip of it."""
    path = Path(path)
    if path.is_dir():
        return load_folder(path, limits)
    if path.is_file():
        if path.stat().st_size > limits.max_archive_bytes:
            raise RunFileError(f"{path.name} is larger than {_mb(limits.max_archive_bytes)}.")
        with path.open("rb") as file:
            return load_zip(file, limits)
    raise RunFileError(f"{path} is neither a run's folder nor a .zip file.")


def load_zip(source: bytes | IO[bytes], limits: RunFileLimits = LIMITS) -> RunResult:
    """A saved run from a .zip of its folder (the bytes, or a seekable binary file such as an upload)."""
    file = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    size = file.seek(0, io.SEEK_END)
    file.seek(0)
    if size == 0:
        raise RunFileError("The file is empty.")
    if size > limits.max_archive_bytes:
        raise RunFileError(f"The file is larger than {_mb(limits.max_archive_bytes)}.")
    try:
        with zipfile.ZipFile(file) as archive:
            members = _checked_members(archive.infolist(), limits)
            return _parse({name: _read_member(archive, info, limits) for name, info in members.items()}, limits)
    except zipfile.BadZipFile as err:
        raise RunFileError(f"Not a readable .zip archive ({err}).") from None


def load_folder(folder: str | Path, limits: RunFileLimits = LIMITS) -> RunResult:
    """A saved run from its folder: the same files and checks as a .zip, no symlinks followed."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        raise RunFileError(f"{folder} is a link or not a folder; give the run's folder itself.")
    entries = sorted(entry.name for entry in folder.iterdir())
    _check_names(entries)
    total = 0
    for name in entries:
        info = (folder / name).lstat()
        if not stat.S_ISREG(info.st_mode):
            raise RunFileError(f"{name} is not a plain file (a link or a folder); a saved run holds only files.")
        total += info.st_size
    if total > limits.max_unpacked_bytes:
        raise RunFileError(f"The run's files add up to more than {_mb(limits.max_unpacked_bytes)}.")
    files = {}
    for name in entries:
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)  # never through a link swapped in meanwhile
        with os.fdopen(os.open(folder / name, flags), "rb") as file:
            files[name] = _read_capped(file.read, limits.max_unpacked_bytes, name)
    return _parse(files, limits)


# ---------------------------------------------------------------- VG_RUNS_DIR


def list_runs(root: Path) -> list[str]:
    """The saved runs directly in `root`: folders holding a meta.json, and .zip files (no links, sorted)."""
    if not root.is_dir():
        return []
    found = []
    for entry in root.iterdir():
        if entry.is_symlink():
            continue
        if (entry.is_dir() and (entry / META_FILE).is_file()) or (entry.is_file() and entry.suffix == ".zip"):
            found.append(entry.name)
    return sorted(found)


def open_listed(root: Path, name: str, limits: RunFileLimits = LIMITS) -> RunResult:
    """The run `name` listed in `root` by list_runs; never a path outside `root`."""
    if name not in list_runs(root):
        raise RunFileError(f"{name!r} is not a saved run in {root}.")
    target = root / name
    if root.resolve() not in target.resolve().parents:
        raise RunFileError(f"{name!r} leads outside {root}.")
    return open_run(target, limits)


# ---------------------------------------------------------------- the checks


def _checked_members(infos: list[zipfile.ZipInfo], limits: RunFileLimits) -> dict[str, zipfile.ZipInfo]:
    """The archive's run files by bare name, after every check that needs no decompression."""
    if not infos:
        raise RunFileError("The archive is empty.")
    if len(infos) > limits.max_members:
        raise RunFileError(f"The archive has {len(infos)} entries; a saved run has {len(RUN_FILES)} files.")
    for info in infos:
        _check_path(info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise RunFileError(f"{info.filename} is a symbolic link; a saved run holds only files.")
        if info.flag_bits & 0x1:
            raise RunFileError(f"{info.filename} is encrypted.")
    folders = {info.filename.split("/")[0] for info in infos if "/" in info.filename}
    if len(folders) > 1:
        raise RunFileError(f"The archive holds several folders ({', '.join(sorted(folders))}); zip one run's folder.")
    prefix = f"{folders.pop()}/" if folders else ""
    files = {}
    for info in infos:
        if info.filename == prefix:
            continue  # the folder's own entry
        if not info.filename.startswith(prefix) or info.is_dir() or "/" in info.filename[len(prefix) :]:
            raise RunFileError(f"{info.filename} is in a nested folder; a saved run is one folder of files.")
        name = info.filename[len(prefix) :]
        if name in files:
            raise RunFileError(f"{name} appears twice in the archive.")
        files[name] = info
    _check_names(list(files))
    if sum(info.file_size for info in files.values()) > limits.max_unpacked_bytes:
        raise RunFileError(f"The archive unpacks to more than {_mb(limits.max_unpacked_bytes)}.")
    for name, info in files.items():
        if info.file_size > limits.ratio_floor_bytes and info.file_size > limits.max_ratio * info.compress_size:
            raise RunFileError(f"{name} inflates more than {limits.max_ratio:g}-fold: refused as a zip bomb.")
    return files


def _check_path(name: str) -> None:
    if "\\" in name or name.startswith("/") or re.match(r"[A-Za-z]:", name) or ".." in name.split("/"):
        raise RunFileError(f"{name!r} is not a safe file name (absolute, '..' or a backslash).")


def _check_names(names: list[str]) -> None:
    unexpected = [name for name in names if name not in RUN_FILES]
    if unexpected:
        raise RunFileError(
            f"Unexpected file {unexpected[0]!r}: a saved run holds only {', '.join(RUN_FILES)} "
            "(no other format is ever read)."
        )
    missing = [name for name in RUN_FILES if name not in names]
    if missing:
        raise RunFileError(f"Not a saved run: {', '.join(missing)} missing.")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: RunFileLimits) -> bytes:
    """A member's bytes, reading no further than its declared size or the unpacked limit."""
    with archive.open(info) as file:
        data = _read_capped(file.read, min(info.file_size, limits.max_unpacked_bytes), info.filename)
        if file.read(1):
            raise RunFileError(f"{info.filename} is larger than the archive declares.")
    return data


def _read_capped(read: Callable[[int], bytes], cap: int, name: str) -> bytes:
    chunks, total = [], 0
    while chunk := read(min(2**20, cap + 1 - total)):
        total += len(chunk)
        if total > cap:
            raise RunFileError(f"{name} is larger than {_mb(cap)}.")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(files: dict[str, bytes], limits: RunFileLimits) -> RunResult:
    """A RunResult from the run's file contents, after checking the meta and every frame's schema."""
    meta = _meta(files[META_FILE])
    frames = {name: _frame(name, files[f"{name}.parquet"], limits) for name in FRAMES}
    spec = _spec(meta)
    stats = frames["layer_stats"]
    if stats.empty:
        raise RunFileError("The run recorded no probe snapshot (layer_stats is empty): nothing to show.")
    n_layers = int(stats["layer"].max())
    layered = ("layer_stats", "layer_steps", "histograms", "time_stats", "time_histograms")
    layers = [frames[name]["layer"] for name in layered if len(frames[name])]
    if min(int(part.min()) for part in layers) < 0 or max(int(part.max()) for part in layers) > n_layers:
        raise RunFileError("The frames disagree on the layers (layer numbers out of range).")
    names = meta.get("layers")
    if names is not None and len(names) != n_layers:
        raise RunFileError(f"meta.json names {len(names)} layers where the frames record {n_layers}.")
    return RunResult(spec=spec, meta=meta, **frames)


def _meta(data: bytes) -> dict[str, Any]:
    try:
        meta = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as err:
        raise RunFileError(f"meta.json is not valid JSON ({err}).") from None
    if not isinstance(meta, dict):
        raise RunFileError("meta.json is not a JSON object.")
    if not isinstance(meta.get("status"), str):
        raise RunFileError("meta.json has no status: not a run saved by vg_core.")
    layers = meta.get("layers")
    if layers is not None and (
        not isinstance(layers, list) or not layers or not all(isinstance(name, str) and name for name in layers)
    ):
        raise RunFileError("meta.json's layers must be a list of the layers' names (module paths).")
    if meta.get("source") == WATCH_SOURCE:
        _check_watch_meta(meta)
    elif not isinstance(meta.get("spec"), dict) or not isinstance(meta.get("dataset"), dict):
        raise RunFileError("meta.json has no spec and is not a watched run: not a run saved by vg_core.")
    return meta


def _check_watch_meta(meta: dict[str, Any]) -> None:
    if "spec" in meta:
        raise RunFileError("meta.json of a watched run must not have a spec.")
    if not isinstance(meta.get("name"), str) or not 0 < len(meta["name"]) <= 100:
        raise RunFileError("meta.json of a watched run needs a name (1 to 100 characters).")
    if not isinstance(meta.get("key"), str) or not KEY_PATTERN.fullmatch(meta["key"]):
        raise RunFileError("meta.json of a watched run needs a key of letters, digits, '.', '_' or '-'.")
    if "layers" not in meta:
        raise RunFileError("meta.json of a watched run needs its layers' names (a list of module paths).")


def _spec(meta: dict[str, Any]) -> RunSpec | None:
    if meta.get("source") == WATCH_SOURCE:
        return None
    try:
        return RunSpec(**meta.pop("spec"))
    except (TypeError, SpecError) as err:
        raise RunFileError(f"meta.json's spec is not one this version accepts ({err}).") from None


def _frame(name: str, data: bytes, limits: RunFileLimits):
    """One frame from its Parquet bytes: the column names and Arrow types are checked before decoding."""
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        metadata = parquet.metadata
        decoded = sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as err:
        raise RunFileError(f"{name}.parquet is not a readable Parquet file ({err}).") from None
    if metadata.num_rows > limits.max_rows or decoded > limits.max_parquet_bytes:
        raise RunFileError(f"{name}.parquet holds more than this page reads ({metadata.num_rows:,} rows).")
    if schema.names != FRAME_COLUMNS[name]:
        raise RunFileError(f"{name}.parquet has the columns {schema.names}, expected {FRAME_COLUMNS[name]}.")
    for column in schema:
        if not _type_fits(column.name, column.type, metadata.num_rows):
            raise RunFileError(f"{name}.parquet's column {column.name} has the type {column.type}.")
    try:
        table = parquet.read()
    except (pa.ArrowException, OSError) as err:
        raise RunFileError(f"{name}.parquet cannot be read ({err}).") from None
    frame = table.to_pandas(ignore_metadata=True)  # the file's pandas metadata (dtypes, index) is not trusted
    casts = {column: ("int64" if column in INT_COLUMNS else float) for column in frame if column not in TEXT_COLUMNS}
    return frame.astype(casts)


def _type_fits(column: str, kind: pa.DataType, rows: int) -> bool:
    if rows == 0 and pa.types.is_null(kind):
        return True
    if column in TEXT_COLUMNS:
        return pa.types.is_string(kind) or pa.types.is_large_string(kind)
    if column in INT_COLUMNS:
        return pa.types.is_integer(kind)
    return pa.types.is_floating(kind) or pa.types.is_integer(kind)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _mb(size: int) -> str:
    return f"{size / 2**20:,.0f} MB"
