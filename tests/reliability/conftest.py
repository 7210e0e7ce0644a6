"""The reliability suite: a per-test time bound (a hang fails the test instead of stalling CI), the tiny real models
the bad-input corpus calls, and a summary line with the corpus counts."""

from __future__ import annotations

import faulthandler
import signal
import sys
from functools import cached_property
from pathlib import Path

import pytest
import torch

# Seconds one test may take: SIGALRM raises in the test (a Python-level hang fails it), and if the process is stuck
# in C code past twice the bound faulthandler dumps every thread's stack and exits, so CI never waits forever.
TIME_BOUND_S = 60
COLORS = ("white", "red", "green", "blue")
ROOT = Path(__file__).resolve().parents[2]
METRICS_DIR = ROOT / "src" / "mmquant" / "metrics"


class CaseTimeout(Exception):
    """The test ran past its time bound."""


@pytest.fixture(autouse=True)
def _time_bound(request):
    bound = request.node.get_closest_marker("time_bound")
    seconds = bound.args[0] if bound else TIME_BOUND_S

    def _raise(signum, frame):
        raise CaseTimeout(f"{request.node.nodeid}: still running after {seconds} s (a hang?)")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    faulthandler.dump_traceback_later(2 * seconds, exit=True, file=sys.stderr)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()


def pytest_configure(config):
    config.addinivalue_line("markers", "time_bound(seconds): per-test time bound of the reliability suite")


def pytest_terminal_summary(terminalreporter):
    """``bad-input corpus: N cases over M entry points`` (from the parametrize ids ``<entry point>::<case>``)."""
    stats = terminalreporter.stats
    ids = [
        r.nodeid.split("[", 1)[1].rstrip("]")
        for key in ("passed", "failed", "error")
        for r in stats.get(key, [])
        if "test_bad_input_corpus" in r.nodeid and r.when == "call" and "[" in r.nodeid
    ]
    if ids:
        entries = {i.split("::")[0] for i in ids}
        failed = len([r for r in stats.get("failed", []) if "test_bad_input_corpus" in r.nodeid])
        terminalreporter.write_line(
            f"bad-input corpus: {len(ids)} cases over {len(entries)} entry points ({failed} failed)"
        )


class Zoo:
    """Tiny real models of every family (the registry's ``*-test`` sizes), built on first use and shared, and a
    scratch folder (``tmp(name)``: an empty folder of that name; a fresh one without a name)."""

    def __init__(self, root: Path):
        self.root = root
        self._count = 0

    def tmp(self, name: str | None = None) -> Path:
        if name is None:
            self._count += 1
            name = f"scratch-{self._count}"
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def tokenizer(self):  # Caption MNIST's closed vocabulary, 48 tokens (the MXQ-VAE test length)
        from mmquant.data.caption_grammar import caption_vocabulary
        from mmquant.data.tokenizer import build_word_tokenizer

        return build_word_tokenizer(caption_vocabulary(COLORS), model_max_length=48)

    def ids(self, n: int = 2, length: int = 48) -> torch.Tensor:
        captions = ["The red 7 is on the upper left.", "This is white 3.", "There is a blue 0 on the right."]
        enc = self.tokenizer((captions * n)[:n], padding="max_length", max_length=length, return_tensors="pt")
        return enc.input_ids

    def _text_ids(self) -> dict:
        t = self.tokenizer
        return dict(vocab_size=len(t), pad_token_id=t.pad_token_id)

    @cached_property
    def optvq(self):
        import mmquant

        torch.manual_seed(0)
        return mmquant.create_model("test").eval()

    @cached_property
    def mxqvae(self):
        import mmquant

        torch.manual_seed(0)
        return mmquant.create_model("mxqvae-test", mask_token_id=self.tokenizer.mask_token_id, **self._text_ids())

    @cached_property
    def prior(self):
        from mmquant.models.mxqvae import MXQVAEPriorConfig, MXQVAEPriorForCausalLM

        torch.manual_seed(0)
        config = MXQVAEPriorConfig(stage1_config=self.mxqvae.config.to_dict(), n_layer=1, n_head=2, n_embd=32)
        return MXQVAEPriorForCausalLM(config).eval()

    @cached_property
    def pipeline(self):
        from mmquant.pipelines import MXQVAEPipeline

        return MXQVAEPipeline(stage1=self.mxqvae.eval(), prior=self.prior, tokenizer=self.tokenizer)

    @cached_property
    def laviter(self):
        import mmquant

        torch.manual_seed(0)
        text = dict(vocab_size=len(self.tokenizer), max_length=12, embed_dim=16, num_heads=2, intermediate_size=32)
        return mmquant.create_model("laviter-test", text_config=text).eval()

    @cached_property
    def jwae(self):
        import mmquant

        t = self.tokenizer
        torch.manual_seed(0)
        return mmquant.create_model(
            "jwae-test",
            max_text_length=24,
            bos_token_id=t.bos_token_id,
            eos_token_id=t.eos_token_id,
            unk_token_id=t.unk_token_id,
            **self._text_ids(),
        ).eval()

    @cached_property
    def judge(self):
        from mmquant.models.caption_mnist_judge import CaptionMnistJudgeConfig, CaptionMnistJudgeModel

        torch.manual_seed(0)
        return CaptionMnistJudgeModel(CaptionMnistJudgeConfig(hidden_channels=[4, 4, 8])).eval()

    @cached_property
    def diffusers_optvq(self):
        import mmquant

        return mmquant.OptVQDiffusersModel.from_optvq(self.optvq)

    @cached_property
    def collator(self):
        from mmquant.data.collate import ImageCaptionCollator

        return ImageCaptionCollator(self.tokenizer, image_size=64)

    @cached_property
    def metrics(self) -> dict:
        import evaluate

        names = [p.name for p in sorted(METRICS_DIR.iterdir()) if (p / f"{p.name}.py").is_file()]
        # in memory: a compute that raises must not leave a cache-file lock behind (evaluate 0.4.6)
        return {name: evaluate.load(str(METRICS_DIR / name), keep_in_memory=True) for name in names}


@pytest.fixture(scope="session")
def zoo(tmp_path_factory) -> Zoo:
    return Zoo(tmp_path_factory.mktemp("zoo"))
