"""What the page reuses between reruns (vg_core.pagestate.Memo, results_key): built once per key, the last few kept,
and never the charts of a run still training for the same run finished."""

from __future__ import annotations

import dataclasses

from engine_helpers import tiny_spec

from vg_core.pagestate import Memo, results_key
from vg_core.train import train


def test_memo_builds_once_per_key_and_keeps_the_last_few() -> None:
    memo, built = Memo(2), []

    def build(value: int):
        return lambda: built.append(value) or value

    assert memo.get("a", build(1)) == 1 and memo.get("a", build(2)) == 1  # the second build is not called
    memo.get("b", build(3))
    memo.get("a", build(4))  # "a" used last: "b" is now the oldest
    memo.get("c", build(5))  # over the size: "b" goes
    assert memo.get("a", build(6)) == 1 and memo.get("b", build(7)) == 7
    assert built == [1, 3, 5, 7]


def test_results_key_tells_a_run_in_progress_from_its_end() -> None:
    result = train(tiny_spec())
    partial = dataclasses.replace(result, steps=result.steps.iloc[:1], meta={**result.meta, "status": "running"})
    assert results_key([("a", result)]) == results_key([("a", result)])
    assert results_key([("a", result)]) != results_key([("a", partial)])
    assert results_key([("a", result)]) != results_key([("b", result)])  # the name is drawn too
