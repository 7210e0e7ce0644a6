"""The paper's Table 2 ablation with seeds, in one command: for each seed, phase 1 (VTA), phase 2 (the generator and
the captioner on the frozen encoders), then the four phase-3 runs from the same phase-2 model (the full LAViTeR,
VTA-only, Img2Txt, Txt2Img, each its ``configs/phase3_*.yaml``), and the seeded table of ``evaluate_laviter.py`` (the
four and ``phase2``, the phase-2 models they start from):

    python examples/jwae/pretrain_grid_features.py --output_dir outputs/jwae-grid-features
    python examples/laviter/run_ablation.py --seeds 0 1 2 --jobs 2 --output_dir outputs/laviter-ablation

Each run is a ``train_laviter.py`` process writing ``<output_dir>/s<seed>/<run>/`` (its log beside it as
``<run>.log``; ``--train_args`` are added to every run's, after the config's); a run whose ``eval_results.json``
exists is not run again, and an interrupted one resumes from its last checkpoint, so the command can be repeated
after a stop. ``--jobs`` runs go side by side (one thread each), each worker taking the next run whose phase
before it has finished (all seeds' phases 1 and 2 first). The table goes to ``<output_dir>/evaluation/``;
``--results_file`` merges it (``ablation/<model>/seed<k>`` and ``ablation/<model>``) into a results file.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import threading
from pathlib import Path
from typing import NamedTuple

from mmquant.arguments import make_parser

HERE = Path(__file__).resolve().parent
# the ablation's models: name in the table -> phase-3 config
PHASE3 = {
    "full": "phase3_joint",
    "vta-only": "phase3_vta_only",
    "img2txt": "phase3_img2txt",
    "txt2img": "phase3_txt2img",
}


def parse_args(argv=None) -> argparse.Namespace:
    p = make_parser(__doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="one full pipeline per seed")
    p.add_argument("--output_dir", default="outputs/laviter-ablation", help="s<seed>/<run>/ folders and the table")
    p.add_argument("--phase1_config", default=str(HERE / "configs" / "phase1_vta_grid.yaml"), help="phase 1 config")
    p.add_argument("--phase2_config", default=str(HERE / "configs" / "phase2_generators.yaml"), help="phase 2 config")
    p.add_argument(
        "--grid_features", default=None, help="the pretrained digit CNN folder (default: the phase-1 config's)"
    )
    p.add_argument("--jobs", type=int, default=1, help="runs trained side by side (one thread each)")
    p.add_argument("--dataset_cache_dir", default=None, help="datasets cache of the prepared Caption MNIST data")
    p.add_argument("--results_file", default=None, help="merge the seeded table into this results file")
    p.add_argument(
        "--train_args", default="", help='more train_laviter.py arguments for every run (e.g. "--max_steps 10")'
    )
    p.add_argument("--evaluate_args", default="", help='more evaluate_laviter.py arguments (e.g. "--eval_images 100")')
    args = p.parse_args(argv)
    if len(set(args.seeds)) != len(args.seeds) or args.jobs < 1:
        p.error("--seeds must be distinct and --jobs >= 1")
    return args


def _train(folder: Path, config: str, extra: list[str], args) -> Path:
    """One ``train_laviter.py`` run into ``folder`` (skipped when it has finished)."""
    if (folder / "eval_results.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(HERE / "train_laviter.py"), "--config", config, "--output_dir", str(folder)]
    argv += [*extra, *shlex.split(args.train_args), "--resume_from_checkpoint", "latest"]
    if args.dataset_cache_dir:
        argv += ["--dataset_cache_dir", args.dataset_cache_dir]
    with open(folder.parent / f"{folder.name}.log", "a") as log:
        subprocess.run(argv, check=True, stdout=log, stderr=subprocess.STDOUT)
    return folder


class Run(NamedTuple):
    """One ``train_laviter.py`` run of the plan: its folder, config and arguments, and the run it starts from."""

    folder: Path
    config: str
    extra: list[str]
    after: Path | None = None  # the --init_from folder, which must have finished first


def plan(seed: int, args) -> tuple[list[Run], dict[str, Path]]:
    """Phase 1, phase 2 and the four phase-3 runs of one seed, and ``{model name: its folder}``."""
    root, seeded = Path(args.output_dir) / f"s{seed}", ["--seed", str(seed)]
    grid = ["--grid_features", args.grid_features] if args.grid_features else []
    vta, generators = root / "vta", root / "generators"
    runs = [
        Run(vta, args.phase1_config, seeded + grid),
        Run(generators, args.phase2_config, seeded + ["--init_from", str(vta)], vta),
    ]
    phase3 = seeded + ["--init_from", str(generators)]
    runs += [Run(root / name, str(HERE / "configs" / f"{c}.yaml"), phase3, generators) for name, c in PHASE3.items()]
    return runs, {name: root / name for name in PHASE3} | {"phase2": generators}


def train_all(runs: list[Run], args) -> None:
    """``--jobs`` workers take the runs in order, each the first whose ``--init_from`` run has finished, so that no
    core waits while another seed's run could go (phase 3 of one seed beside phase 2 of another)."""
    finished = {r.folder for r in runs if (r.folder / "eval_results.json").is_file()}
    pending = [r for r in runs if r.folder not in finished]
    ready = threading.Condition()
    failures: list[BaseException] = []

    def startable() -> Run | None:
        return next((r for r in pending if r.after is None or r.after in finished), None)

    def worker() -> None:
        while True:
            with ready:
                ready.wait_for(lambda: failures or not pending or startable() is not None)
                if failures or not pending:
                    return
                run = startable()
                pending.remove(run)
            try:
                _train(run.folder, run.config, run.extra, args)
            except BaseException as err:  # a failed run stops the others from starting new ones
                with ready:
                    failures.append(err)
                    ready.notify_all()
                return
            with ready:
                finished.add(run.folder)
                ready.notify_all()

    workers = [threading.Thread(target=worker) for _ in range(args.jobs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failures:
        raise failures[0]


def main(argv=None) -> dict:
    args = parse_args(argv)
    plans = [plan(seed, args) for seed in args.seeds]
    # phases 1 and 2 of every seed first, then the phase-3 runs: the runs that others wait for go first
    runs = [r for runs, _ in plans for r in runs[:2]] + [r for runs, _ in plans for r in runs[2:]]
    train_all(runs, args)
    folders = [f for _, f in plans]
    models = [f"{name}=" + ",".join(str(f[name]) for f in folders) for name in folders[0]]
    evaluate = [sys.executable, str(HERE / "evaluate_laviter.py"), "--models", *models, "--num_threads", "1"]
    evaluate += ["--output_dir", str(Path(args.output_dir) / "evaluation"), *shlex.split(args.evaluate_args)]
    for option in ("dataset_cache_dir", "results_file"):
        if getattr(args, option):
            evaluate += [f"--{option}", getattr(args, option)]
    subprocess.run(evaluate, check=True)
    return {name: [str(f[name]) for f in folders] for name in folders[0]}


if __name__ == "__main__":
    from mmquant.user_errors import run_command

    raise SystemExit(run_command(main, prog="run_ablation.py"))
