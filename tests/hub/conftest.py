"""A real hub for the publishing tests: ``mmquant.hub.local_server`` on 127.0.0.1 (a free port, stopped when the
session ends). The client side of each round trip runs in a fresh Python process whose environment points
huggingface_hub at the server (``HF_ENDPOINT``, ``HF_HUB_DISABLE_XET=1``, a temporary ``HF_HOME``,
``HF_HUB_OFFLINE=0``): huggingface_hub reads those when it is imported, and the test process itself imported it
offline long before, so a fresh process is both the reliable way and what "load it back elsewhere" means."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mmquant.hub.local_server import LocalHubServer

TOKEN = "hf_test_token"


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory):
    with LocalHubServer(tmp_path_factory.mktemp("hub"), tokens={TOKEN: "tester"}) as server:
        yield server


@pytest.fixture
def run_client(hub_server, tmp_path):
    """Run Python source in a fresh process against the local hub; returns its stdout (fails with its output)."""
    home = tmp_path / "hf_home"

    def run(source: str, token: str | None = TOKEN, offline: bool = False, timeout: int = 300) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env |= {
            "HF_ENDPOINT": hub_server.endpoint,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HOME": str(home),
            "HF_HUB_OFFLINE": "1" if offline else "0",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }
        if token:
            env["HF_TOKEN"] = token
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(source)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            pytest.fail(f"client process failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-6000:]}")
        return proc.stdout

    return run


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
