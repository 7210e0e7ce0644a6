"""``merge_result``: runs that finish at the same moment each keep their entry in a shared results file."""

from __future__ import annotations

import json
import multiprocessing

from mmquant.training import merge_result


def _merge_many(path: str, worker: int, rounds: int) -> None:
    for i in range(rounds):
        merge_result(path, f"w{worker}/r{i}", {"worker": worker, "round": i})


def test_concurrent_merges_keep_every_entry(tmp_path):
    path = tmp_path / "results.json"
    merge_result(path, "existing", {"value": 1})
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_merge_many, args=(str(path), w, 25)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    merged = json.loads(path.read_text())
    assert set(merged) == {"existing"} | {f"w{w}/r{i}" for w in range(4) for i in range(25)}
    assert merged["w3/r24"] == {"worker": 3, "round": 24}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".results.json.lock", "results.json"]  # no tmp files left
