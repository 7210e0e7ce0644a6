"""A real hub for the hub tests: :class:`mmquant.hub.local_server.LocalHubServer` on 127.0.0.1 (a free port, a
temporary root, one server for the session), and two ways to point the real client libraries at it.

Why two: ``tests/conftest.py`` sets ``HF_HUB_OFFLINE=1`` and other tests import ``huggingface_hub`` (and
``transformers``, ``datasets``) long before these fixtures run, so the environment variables they read at import
(``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME``, ``HF_HUB_DISABLE_XET``) are already frozen in this process.

- ``run_client`` (subprocess): runs Python source in a fresh interpreter whose environment is set before anything is
  imported: ``HF_ENDPOINT`` = the server, ``HF_HUB_DISABLE_XET=1``, ``HF_HUB_OFFLINE=0`` (or 1 for cache-only
  checks), a temporary ``HF_HOME`` shared by the calls of one test, and ``HF_TOKEN=hf_test_token`` unless
  ``token=None``. This is the reliable way for transformers / diffusers / datasets / evaluate, which keep their own
  import-time copies of these settings and shared ``HfApi`` instances, and it is what "load it back in a fresh
  process" means anyway. On failure the test fails with the process output and the server's recorded errors.
- ``hub_env`` (this process, fast): huggingface_hub reads its ``constants`` module attributes at call time, so the
  fixture monkeypatches ``constants.ENDPOINT``, ``HUGGINGFACE_CO_URL_TEMPLATE``, ``HF_HUB_OFFLINE`` (False),
  ``HF_HUB_DISABLE_XET``, the cache/home/token paths (a temporary ``HF_HOME``), the endpoint of the module-level
  ``HfApi`` behind ``huggingface_hub.upload_file()``/``create_repo()``..., and sets ``HF_TOKEN`` (read from
  ``os.environ`` at call time). Everything is restored after the test. Use it for huggingface_hub-only tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mmquant.hub.local_server import LocalHubServer

TOKEN = "hf_test_token"
USER = "tester"


def client_env(server: LocalHubServer, hf_home: Path, token: str | None = TOKEN, offline: bool = False) -> dict:
    """The environment of a client process pointed at ``server`` (inherited ``HF_*`` variables removed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE_", "TRANSFORMERS_"))}
    env.update(
        {
            "HF_ENDPOINT": server.endpoint,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HOME": str(hf_home),
            "HF_HUB_OFFLINE": "1" if offline else "0",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
            "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
            "NO_PROXY": ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"])),
        }
    )
    if token:
        env["HF_TOKEN"] = token
    return env


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHubServer]:
    """The local hub for the whole session (accepting ``hf_test_token`` as user ``tester``)."""
    with LocalHubServer(tmp_path_factory.mktemp("hub"), tokens={TOKEN: USER}) as server:
        yield server


@pytest.fixture
def hf_home(tmp_path: Path) -> Path:
    """The ``HF_HOME`` of one test (its cache), shared by ``hub_env`` and the ``run_client`` calls of the test."""
    return tmp_path / "hf_home"


@pytest.fixture
def run_client(hub_server: LocalHubServer, hf_home: Path, tmp_path: Path) -> Callable[..., str]:
    """``run(source, token=TOKEN, offline=False, timeout=300, env=None) -> stdout``: run dedented Python source in
    a fresh process (cwd ``tmp_path``) against the local hub; the test fails with its output if it exits non-zero."""

    def run(
        source: str, token: str | None = TOKEN, offline: bool = False, timeout: float = 300, env: dict | None = None
    ) -> str:
        errors_before = len(hub_server.errors)
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(source)],
            env={**client_env(hub_server, hf_home, token, offline), **(env or {})},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            server_errors = "\n".join(hub_server.errors[errors_before:]) or "none"
            unhandled = ", ".join(hub_server.unhandled) or "none"
            pytest.fail(
                f"client process failed ({proc.returncode}):\n--- stdout\n{proc.stdout}\n--- stderr\n"
                f"{proc.stderr[-6000:]}\n--- server errors\n{server_errors}\n--- unhandled routes: {unhandled}",
                pytrace=False,
            )
        return proc.stdout

    return run


@pytest.fixture
def hub_env(hub_server: LocalHubServer, hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> LocalHubServer:
    """Point huggingface_hub in this process at the local hub for one test (see the module docstring)."""
    from huggingface_hub import constants, hf_api

    endpoint = hub_server.endpoint
    for name, value in client_env(hub_server, hf_home).items():
        if name.startswith("HF_"):
            monkeypatch.setenv(name, value)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    patched = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HOME": str(hf_home),
        "HF_HUB_CACHE": str(hf_home / "hub"),
        "HF_ASSETS_CACHE": str(hf_home / "assets"),
        "HF_TOKEN_PATH": str(hf_home / "token"),
        "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
        "AGENT_HARNESSES_PATH": str(hf_home / ".agent_harnesses.json"),
    }
    for name, value in patched.items():
        monkeypatch.setattr(constants, name, value)
    monkeypatch.setattr(hf_api.api, "endpoint", endpoint)  # the HfApi behind the module-level functions
    return hub_server


@pytest.fixture
def repo_root() -> Path:
    """The repository checkout."""
    return Path(__file__).resolve().parents[2]
