"""Check that a copy of the repository without its ``.git`` (sent to a GPU machine, say) holds one commit's files.

    python benchmarks/tree_manifest.py write .devtree/manifest.json   # here: a clean checkout's commit and blobs
    python benchmarks/tree_manifest.py check .devtree/manifest.json   # there: prints the commit, or exits 1

``write`` records ``git ls-files -s`` (every tracked file's blob id) and HEAD, refusing a checkout with uncommitted
changes to tracked files. ``check`` recomputes each file's git blob id (``sha1("blob <size>\\0" + bytes)``) and
prints the commit only when every file matches; a results file written there then records that commit
(``MMQUANT_COPIED_FROM_COMMIT``, read by :func:`mmquant.training.git_commit`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from mmquant.arguments import make_parser


def blob_id(path: Path) -> str | None:
    """The git blob id of ``path`` (of its target's name when it is a symbolic link), or None when it is missing."""
    if path.is_symlink():
        data = os.readlink(path).encode()
    elif path.is_file():
        data = path.read_bytes()
    else:
        return None
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def write(manifest: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout

    if git("status", "--porcelain", "--untracked-files=no").strip():
        sys.exit("tree_manifest write: tracked files have uncommitted changes; commit them first.")
    blobs = {}
    for line in git("ls-files", "-s").splitlines():
        meta, name = line.split("\t", 1)
        mode, blob, _ = meta.split()
        if mode != "160000":  # submodules hold no file here
            blobs[name] = blob
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"commit": git("rev-parse", "HEAD").strip(), "blobs": blobs}) + "\n")


def check(manifest: Path) -> None:
    recorded = json.loads(manifest.read_text())
    wrong = [n for n, blob in recorded["blobs"].items() if blob_id(Path(n)) != blob]
    if wrong:
        sys.exit(f"tree_manifest check: {len(wrong)} files differ from {recorded['commit']}: {wrong[:5]}")
    print(recorded["commit"])


def main(argv=None) -> None:
    p = make_parser(__doc__)
    p.add_argument("action", choices=("write", "check"), help="write here (a clean checkout) or check there (a copy)")
    p.add_argument("manifest", type=Path, help="the manifest file (JSON)")
    args = p.parse_args(argv)
    (write if args.action == "write" else check)(args.manifest)


if __name__ == "__main__":
    main()
