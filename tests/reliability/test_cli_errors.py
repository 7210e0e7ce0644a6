"""Command lines in fresh processes, as a user runs them: an expected user error (unknown name, missing file or
folder, no network or no token for the Hub) is one line on stderr with the fix and exit status 1 or 2, never a
traceback; ``--debug`` brings the traceback back; input files are checked before any model is loaded; the MNIST
download is checked against its SHA-256."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocess/integration runs: CI runs them (-m "not gpu"); the fast default skips them

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "MMQUANT_"))}
    return {**env, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT / "src"), **extra}


def _run(*argv, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, env=env or _env(), timeout=timeout)


def _one_line(run: subprocess.CompletedProcess, status: int, *fragments: str) -> str:
    err = run.stderr.strip()
    assert run.returncode == status, (run.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    last = err.splitlines()[-1]
    for fragment in fragments:
        assert fragment in last, (fragment, last)
    return last


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


CLI = ["-m", "mmquant.cli"]
DATA = ["-m", "mmquant.data.cli"]


@pytest.mark.time_bound(120)
@pytest.mark.parametrize(
    "argv,status,fragments",
    [
        ([*CLI, "zoo", "info", "nope"], 1, ["mmquant: error: KeyError: name='nope'", "--debug"]),
        ([*CLI, "publish", "/no/such/folder", "--repo_id", "a/b"], 1, ["FileNotFoundError", "/no/such/folder"]),
        ([*CLI, "publish-metric", "nope", "--repo_id", "a/b"], 1, ["name='nope'"]),
        ([*DATA, "build", "nope"], 1, ["mmquant-data: error: ValueError: name='nope'", "available builders"]),
        ([*DATA, "build", "caption_mnist", "--num_proc", "0"], 2, ["--num_proc 0: expected 1 to 256"]),
        ([*DATA, "build", "cub200_captions", "--data_dir", "/no/such/dir"], 2, ["--data_dir /no/such/dir"]),
        ([*DATA, "build", "cub200_captions"], 1, ["data_dir is required"]),
    ],
    ids=["zoo-unknown", "publish-missing-folder", "unknown-metric", "unknown-builder", "num-proc-0",
         "missing-data-dir", "data-dir-required"],
)  # fmt: skip
def test_user_errors_are_one_line(argv, status, fragments):
    _one_line(_run(*argv), status, *fragments)


def test_debug_shows_the_traceback():
    run = _run(*CLI, "zoo", "info", "nope", "--debug")
    assert run.returncode == 1 and "Traceback" in run.stderr and "KeyError" in run.stderr
    run = _run(*CLI, "zoo", "info", "nope", env=_env(MMQUANT_DEBUG="1"))
    assert "Traceback" in run.stderr


@pytest.mark.time_bound(180)
def test_push_without_network_is_one_line_with_the_fix(tmp_path):
    """``mmquant publish`` to an endpoint nothing listens on: one line naming HF_ENDPOINT and the token."""
    import mmquant

    folder = tmp_path / "model"
    mmquant.create_model("test").save_pretrained(folder)
    env = _env(HF_HUB_OFFLINE="0", HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}", HF_TOKEN="hf_x",
               HF_HUB_DISABLE_XET="1", HF_HUB_ETAG_TIMEOUT="2", HF_HUB_DOWNLOAD_TIMEOUT="2")  # fmt: skip
    run = _run(*CLI, "publish", str(folder), "--repo_id", "me/model", env=env, timeout=170)
    _one_line(run, 1, "mmquant: error:", "HF_ENDPOINT", "HF_TOKEN")


@pytest.mark.time_bound(180)
def test_bad_token_is_one_line_with_the_fix(tmp_path):
    """A real local hub that refuses the token: the line says to log in or set HF_TOKEN."""
    import mmquant
    from mmquant.hub.local_server import LocalHubServer

    folder = tmp_path / "model"
    mmquant.create_model("test").save_pretrained(folder)
    with LocalHubServer(tmp_path / "hub") as hub:
        env = _env(HF_HUB_OFFLINE="0", HF_ENDPOINT=hub.endpoint, HF_TOKEN="hf_wrong", HF_HUB_DISABLE_XET="1")
        run = _run(*CLI, "publish", str(folder), "--repo_id", "tester/model", env=env, timeout=170)
    _one_line(run, 1, "mmquant: error:", "HF_TOKEN")


# ------------------------------------------------------------------------------ input files before models
SCRIPTS = [
    (EXAMPLES / "optvq" / "demo.py", ["--checkpoint", "/no/such/ckpt"], "--checkpoint /no/such/ckpt"),
    (EXAMPLES / "laviter" / "demo.py", ["--image", "/no/such.png"], "--image /no/such.png"),
    (EXAMPLES / "jwae" / "retrieve.py", ["--model", "/no/model", "--index", "0"], "--model /no/model"),
    (EXAMPLES / "jwae" / "retrieve.py", ["--model", ".", "--image", "/no/such.png"], "--image /no/such.png"),
    (EXAMPLES / "jwae" / "evaluate_jwae.py", ["--models", "a=/no/model"], "--models a=/no/model"),
    (EXAMPLES / "mxqvae" / "sample_pairs.py", ["--pipeline", "/no/pipe"], "--pipeline /no/pipe"),
    (EXAMPLES / "mxqvae" / "probe_mxqvae.py", ["--pipeline", "/no/pipe"], "--pipeline /no/pipe"),
    (EXAMPLES / "mxqvae" / "sample_pairs.py", ["--image", "/no/such.png"], "--image /no/such.png"),
    (EXAMPLES / "mxqvae" / "evaluate_mxqvae.py", ["degree", "--models", "a=/no/m"], "--models a=/no/m"),
    (EXAMPLES / "mxqvae" / "train_mxqvae_prior.py", ["--stage1", "/no/stage1"], "--stage1 /no/stage1"),
    (EXAMPLES / "optvq" / "train_optvq.py", ["--mnist_root", "/no/mnist"], "--mnist_root /no/mnist"),
    (EXAMPLES / "laviter" / "train_laviter.py", ["--data_dir", "/no/data"], "--data_dir /no/data"),
]


@pytest.mark.time_bound(300)
@pytest.mark.parametrize("script,argv,fragment", SCRIPTS, ids=[f"{s.name}-{a[0]}" for s, a, _ in SCRIPTS])
def test_missing_input_fails_before_any_model_loads(script, argv, fragment):
    started = time.time()
    run = _run(str(script), *argv)
    _one_line(run, 2, fragment, "expected an existing")
    # parsing happens before any model, data set or Hub access: a few seconds of imports at most
    assert time.time() - started < 60


def test_training_script_user_error_is_one_line(tmp_path):
    """A data error inside main (here: a batch larger than the data) is one line, not a traceback."""
    run = _run(str(EXAMPLES / "optvq" / "train_optvq.py"), "--config", str(EXAMPLES / "optvq" / "configs" /
               "smoke.yaml"), "--output_dir", str(tmp_path), "--batch_size", "100000")  # fmt: skip
    _one_line(run, 1, "train_optvq.py: error: ValueError: --batch_size 100000 exceeds the 512 training images")


# ------------------------------------------------------------------------------ MNIST download checksum
def _fake_mirror(tmp_path, corrupt: str | None = None) -> tuple[str, dict]:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    sums = {}
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):  # fmt: skip
        data = gzip.compress(name.encode())
        sums[f"{name}.gz"] = hashlib.sha256(data).hexdigest()
        (mirror / f"{name}.gz").write_bytes(data + (b"tampered" if name == corrupt else b""))
    return mirror.as_uri() + "/", sums


def test_mnist_download_refuses_a_wrong_checksum(tmp_path, monkeypatch):
    from mmquant.data import mnist

    url, sums = _fake_mirror(tmp_path, corrupt="t10k-images-idx3-ubyte")
    monkeypatch.setattr(mnist, "_SHA256", sums)
    root = tmp_path / "root"
    with pytest.raises(OSError, match=r"t10k-images-idx3-ubyte.gz .* has sha256 [0-9a-f]{64}, expected .*discarded"):
        mnist._download(root, mirror=url)
    assert not (root / "t10k-images-idx3-ubyte.gz").exists()
    assert not list(root.glob("*.part"))


def test_mnist_download_accepts_matching_files_and_checks_existing_ones(tmp_path, monkeypatch):
    from mmquant.data import mnist

    url, sums = _fake_mirror(tmp_path)
    monkeypatch.setattr(mnist, "_SHA256", sums)
    root = tmp_path / "root"
    mnist._download(root, mirror=url)
    assert sorted(p.name for p in root.iterdir()) == sorted(sums)
    (root / "train-labels-idx1-ubyte.gz").write_bytes(b"changed on disk")
    with pytest.raises(OSError, match="train-labels-idx1-ubyte.gz has sha256 .* delete it and download again"):
        mnist._download(root, mirror=url)


def test_mnist_checksums_are_the_published_ones():
    from mmquant.data import mnist

    assert mnist._SHA256["train-images-idx3-ubyte.gz"].startswith("440fcabf73cc546f")
    assert len(mnist._SHA256) == 4 and all(len(v) == 64 for v in mnist._SHA256.values())
