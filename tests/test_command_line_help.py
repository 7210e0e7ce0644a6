"""``--help`` of every training script, example, benchmark and command: every option has help text, defaults are
shown, the description is kept as written and abbreviations are refused (``--max_step`` is not ``--max_steps``)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(
    p
    for p in [*ROOT.glob("examples/*/*.py"), *ROOT.glob("benchmarks/*.py")]
    # scripts: a parser and a __main__ entry point (benchmarks/tokenizer_bench.py builds the benchmarks' parser only)
    if ("ArgumentParser(" in p.read_text() or "make_parser(" in p.read_text())
    and '__name__ == "__main__"' in p.read_text()
)
COMMANDS = {
    "mmquant-data": ("mmquant.data.cli", "main"),
    "mmquant zoo": ("mmquant.zoo", "main"),
    "mmquant publish": ("mmquant.cli", "_publish"),
    "mmquant publish-metric": ("mmquant.cli", "_publish_metric"),
}


class _Captured(Exception):
    def __init__(self, parser):
        self.parser = parser


def _capture(monkeypatch, call) -> argparse.ArgumentParser:
    """The parser ``call`` builds: stopped at its first parse, before anything runs."""

    def parse_known_args(self, *args, **kwargs):
        raise _Captured(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", parse_known_args)
    with pytest.raises(_Captured) as captured:
        call()
    return captured.value.parser


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def _check(parser: argparse.ArgumentParser) -> list[str]:
    problems = []
    for p in _parsers(parser):
        if p.allow_abbrev:
            problems.append(f"{p.prog}: allow_abbrev is on")
        if not issubclass(p.formatter_class, argparse.ArgumentDefaultsHelpFormatter):
            problems.append(f"{p.prog}: defaults are not shown ({p.formatter_class.__name__})")
        for action in p._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            if not (action.help or "").strip():
                problems.append(f"{p.prog}: {'/'.join(action.option_strings) or action.dest} has no help")
        p.format_help()  # a stray % in a help text fails here
    return problems


def _load(path: Path):
    sys.path.insert(0, str(path.parent))
    try:
        spec = importlib.util.spec_from_file_location(f"_help_{path.parent.name}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_option_of_every_script_has_help(script, monkeypatch):
    module = _load(script)
    entry = getattr(module, "parse_args", None) or module.main
    parser = _capture(monkeypatch, lambda: entry([]))
    assert _check(parser) == []


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_of_every_command_has_help(name, monkeypatch):
    module, function = COMMANDS[name]
    entry = getattr(importlib.import_module(module), function)
    parser = _capture(monkeypatch, lambda: entry(["list"] if name in ("mmquant-data", "mmquant zoo") else []))
    assert _check(parser) == []


def test_model_choices_are_the_scripts_own_family():
    import mmquant

    module = _load(ROOT / "examples" / "optvq" / "train_optvq.py")
    with pytest.raises(SystemExit):
        module.parse_args(["--model", "jwae-caption-mnist"])
    assert module.parse_args(["--model", "vq-mnist", "--dataset", "synthetic"]).model == "vq-mnist"
    assert "jwae-caption-mnist" not in mmquant.list_models("optvq")


def test_help_shows_defaults_and_abbreviations_are_refused():
    script = ROOT / "examples" / "optvq" / "train_optvq.py"
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "(default: outputs/optvq)" in " ".join(out.stdout.split())
    bad = subprocess.run([sys.executable, str(script), "--max_step", "3"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unrecognized arguments: --max_step" in bad.stderr
