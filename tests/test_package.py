"""The package itself: cheap import, one registration point, the README demo."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_import_does_not_pull_plotting_or_diffusers():
    code = "import sys, mmquant; print(','.join(m for m in ('matplotlib', 'diffusers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import mmquant imported {out.stdout.strip()}"


def test_library_never_imports_training_deps_at_module_level():
    """DESIGN.md convention 11 (transformers itself imports accelerate and tqdm; mmquant's own modules must not)."""
    banned = {"accelerate", "tqdm", "matplotlib"}
    offenders = []
    for path in (ROOT / "src/mmquant").rglob("*.py"):
        if "training" in path.relative_to(ROOT / "src/mmquant").parts:
            continue
        for node in ast.parse(path.read_text()).body:  # module level only
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in banned]
    assert offenders == []


def test_registration_lives_in_one_place():
    hits = [p for p in (ROOT / "src/mmquant").rglob("*.py") if ".register(" in p.read_text()]
    assert [p.relative_to(ROOT).as_posix() for p in hits] == ["src/mmquant/models/auto.py"]


@pytest.mark.slow  # a subprocess run
def test_readme_demo_runs_offline(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples/optvq/synthetic_demo.py"),
            "--steps",
            "5",
            "--output_dir",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "identical codes: True" in out.stdout
    assert (tmp_path / "o" / "model.safetensors").exists()


@pytest.mark.slow  # a subprocess run
def test_readme_mnist_demo_runs_offline(tmp_path):
    """The README's first command ends with this demo: the shipped checkpoint on MNIST test digits."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples/optvq/demo.py"),
            "--num_images",
            "500",
            "--output",
            str(tmp_path / "g.png"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "PSNR" in out.stdout and "code usage" in out.stdout
    assert (tmp_path / "g.png").stat().st_size > 0
