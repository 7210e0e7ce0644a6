"""``benchmarks/tree_manifest.py``: a copy of a checkout without its ``.git`` is checked file by file against the
commit it was copied from, and only then does a results file written there name that commit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmquant.training import git_commit

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "tree_manifest.py"


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@t"
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


def _manifest(cwd: Path, action: str, manifest: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), action, str(manifest)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_copy_is_checked_against_its_commit_and_git_commit_names_it(tmp_path, monkeypatch):
    repo, copy = tmp_path / "repo", tmp_path / "copy"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "a.py").write_text("x = 1\n")
    (repo / "data.bin").write_bytes(bytes(range(256)))
    (repo / "link").symlink_to("src")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "one")
    head = _git(repo, "rev-parse", "HEAD").strip()
    manifest = tmp_path / "manifest.json"
    assert _manifest(repo, "write", manifest).returncode == 0

    shutil.copytree(repo, copy, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    checked = _manifest(copy, "check", manifest)
    assert checked.returncode == 0 and checked.stdout.strip() == head

    (copy / "src" / "a.py").write_text("x = 2\n")  # one changed file fails the check and is named
    changed = _manifest(copy, "check", manifest)
    assert changed.returncode == 1 and "src/a.py" in changed.stderr

    (repo / "src" / "a.py").write_text("x = 3\n")  # an uncommitted change is refused at the source
    dirty = _manifest(repo, "write", tmp_path / "dirty.json")
    assert dirty.returncode == 1 and "uncommitted" in dirty.stderr

    monkeypatch.delenv("MMQUANT_COPIED_FROM_COMMIT", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # the copy is not inside any checkout
    assert git_commit(copy) == "unknown"
    monkeypatch.setenv("MMQUANT_COPIED_FROM_COMMIT", head)
    assert git_commit(copy) == head
    # a copy that carries a .git of another commit still records the checked one
    (copy / "src" / "a.py").write_text("x = 1\n")
    _git(copy, "init", "-q")
    _git(copy, "add", "-A")
    _git(copy, "commit", "-qm", "other")
    assert _git(copy, "rev-parse", "HEAD").strip() != head and git_commit(copy) == head
