"""LAViTeR example scripts: the three phases as smoke runs, each starting from the last; the joint phase (model,
discriminators and both optimizers checkpointed) resumed mid-run with the losses of the uninterrupted run; the demo
on the trained folder."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from mmquant.training import list_checkpoints

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "examples" / "laviter"
sys.path.insert(0, str(HERE))
import demo  # noqa: E402
import evaluate_laviter  # noqa: E402
import probe_generators  # noqa: E402
import train_laviter  # noqa: E402
from two_process_runs import assert_two_processes_match_one  # noqa: E402

pytestmark = pytest.mark.slow  # subprocess/integration runs: CI runs them (-m "not gpu"); the fast default skips them


@pytest.fixture(autouse=True)
def _reset_accelerate():
    from accelerate.state import AcceleratorState, PartialState

    yield
    AcceleratorState._reset_state(True)
    PartialState._reset_state()


def _records(output_dir):
    return [json.loads(line) for line in (Path(output_dir) / "losses.jsonl").read_text().splitlines()]


def _run(*argv):
    return train_laviter.main(train_laviter.parse_args(list(argv)))


@pytest.fixture(scope="module")
def smoke_vta(tmp_path_factory):
    """Phase 1 on the smoke config, shared by the tests that continue from it: (data cache, output folder, result)."""
    from accelerate.state import AcceleratorState, PartialState

    root = tmp_path_factory.mktemp("laviter")
    smoke = ["--config", str(HERE / "configs" / "smoke.yaml"), "--dataset_cache_dir", str(root / "data")]
    result = _run(*smoke, "--output_dir", str(root / "vta"))
    AcceleratorState._reset_state(True)
    PartialState._reset_state()
    return root / "data", root / "vta", result


def test_three_phases_resume_and_demo(tmp_path, capsys, smoke_vta):
    data, vta, result = smoke_vta
    common = ["--config", str(HERE / "configs" / "smoke.yaml"), "--dataset_cache_dir", str(data)]
    gen, joint = tmp_path / "generators", tmp_path / "joint"
    names = {m["metric"] for m in result["metrics"]}
    assert {"r_precision@1", "r_precision@3", "real_r_precision@1", "aimcos", "caption_object_accuracy"} <= names
    assert all("vta_loss" in r and "tim_loss" not in r for r in _records(vta) if "loss" in r)

    later = [*common, "--model_config", "{}"]  # the smoke file's model_config builds the phase-1 model only
    _run(*later, "--output_dir", str(gen), "--phase", "generators", "--init_from", str(vta))
    steps = [r for r in _records(gen) if "loss" in r]
    assert all("tim_loss" in r and "itm_loss" in r and "discriminator_loss" in r for r in steps)
    assert all("vta_loss" not in r for r in steps)
    assert (gen / "samples" / "step-4-generated.png").exists() and (gen / "samples" / "step-4-captions.png").exists()

    weights = '{"lambda_vta": 1.0}'
    joint_args = [*common, "--phase", "joint", "--init_from", str(gen), "--model_config", weights]
    result = _run(*joint_args, "--output_dir", str(joint), "--lr_schedule", "constant")
    assert result["lambdas"]["lambda_vta"] == 1.0 and result["phase"] == "joint"
    assert [s for s, _ in list_checkpoints(joint)] == [2, 4]
    assert (joint / "checkpoint-4" / "discriminator" / "optimizer.json").exists()
    steps = [r for r in _records(joint) if "loss" in r]
    assert all("fake_text_loss" in r and "fake_image_loss" in r and "vta_loss" in r for r in steps)

    # stopped after step 2 and resumed: the losses of the uninterrupted run, discriminators included
    part = tmp_path / "part"
    shutil.copytree(joint, part)
    shutil.rmtree(part / "checkpoint-4")
    _run(*joint_args, "--output_dir", str(part), "--lr_schedule", "constant", "--resume_from_checkpoint", "latest")
    resumed = [r for r in _records(part) if "loss" in r]
    for a, b in zip(resumed, steps, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["discriminator_loss"] == pytest.approx(b["discriminator_loss"], rel=1e-5)

    # the demo: a generated test pair's image captioned and its caption drawn; then a user's image file and caption
    capsys.readouterr()
    out = demo.main(demo.parse_args(["--model", str(joint), "--dataset_cache_dir", str(data),
                                     "--output", str(tmp_path / "demo.png")]))  # fmt: skip
    assert "generated caption:" in capsys.readouterr().out and Path(out["output"]).stat().st_size > 0
    image = tmp_path / "mine.png"
    Image.new("RGB", (50, 40), (200, 10, 10)).save(image)
    caption = "The red 7 is on the upper left, and the 3 on the bottom right is blue."
    out = demo.main(demo.parse_args(["--model", str(joint), "--image", str(image), "--caption", caption,
                                     "--output", str(tmp_path / "mine-demo.png")]))  # fmt: skip
    assert len(out["similarity"]) == 2


def test_phase_two_may_rebuild_the_generator_and_the_judge_scores_it(tmp_path, smoke_vta):
    """Phase 2 with another generator (and no captioner) on phase 1's encoders, through the probe driver; the
    evaluation adds the judge's reading of the generated images."""
    data_dir, vta, _ = smoke_vta
    data = ["--dataset_cache_dir", str(data_dir)]
    table = probe_generators.main(
        ["--init_from", str(vta), "--variants", "two-stages", "place-labels", "region-labels", "--max_steps", "2",
         "--eval_images", "8",
         "--train_examples", "32", "--test_examples", "16", "--readout_examples", "32", "--output_dir",
         str(tmp_path / "probes"), *data]
    )  # fmt: skip
    assert set(table["variants"]) == {"two-stages", "place-labels", "region-labels"}
    readout = table["encoder_readout"]
    assert set(readout) == {f"{m}_readout_{a}" for m in ("sentence", "image") for a in ("digit", "color")}
    assert all(0 <= v <= 1 for v in readout.values())
    for name, row in table["variants"].items():
        assert all(row[k] is not None for k in probe_generators._REPORTED[:5]), (name, row)  # the generator's
        assert 0 <= row["judge_object_accuracy"] <= 1 and 0 <= row["judge_r_precision@1"] <= 100
    config = json.loads((tmp_path / "probes" / "two-stages" / "config.json").read_text())
    assert config["num_generator_stages"] == 2 and config["use_itm"] is False
    from safetensors.torch import load_file

    # the auxiliary place classifier: trained from the captions' labels, its term logged with the generator's
    labelled = tmp_path / "probes" / "place-labels"
    assert json.loads((labelled / "config.json").read_text())["place_label_classes"] == [11, 5]
    logged = [json.loads(line) for line in (labelled / "losses.jsonl").read_text().splitlines()]
    assert all(r["place_label_loss"] > 0 for r in logged if "loss" in r)
    # ... or as a head of the model on the image regions: saved with it, both its terms logged
    regional = tmp_path / "probes" / "region-labels"
    assert json.loads((regional / "config.json").read_text())["place_classifier"] == "regions"
    logged = [json.loads(line) for line in (regional / "losses.jsonl").read_text().splitlines()]
    assert all(r["place_label_loss"] > 0 and r["place_classifier_loss"] > 0 for r in logged if "loss" in r)
    assert "place_classifier.weight" in load_file(regional / "model.safetensors")
    encoders = ("image_encoder.", "text_encoder.")
    before, after = (
        load_file(vta / "model.safetensors"),
        load_file(tmp_path / "probes" / "two-stages" / "model.safetensors"),
    )
    assert all(before[k].equal(after[k]) for k in before if k.startswith(encoders))  # frozen in phase 2
    assert not any(k.startswith("captioner.") for k in after)
    assert "| two-stages |" in (tmp_path / "probes" / "probes.md").read_text()

    # the seeded table: a per-seed entry that recomputes the training run's own evaluation, and the mean ± std entry
    results = tmp_path / "results.json"
    argv = ["--models", f"vta={vta}", f"two-stages={tmp_path / 'probes' / 'two-stages'}", "--train_examples", "32",
            "--test_examples", "16", "--eval_images", "8", "--r_precision_candidates", "8",
            "--output_dir", str(tmp_path / "eval"), "--results_file", str(results), *data]  # fmt: skip
    entries = evaluate_laviter.main(evaluate_laviter.parse_args(argv))
    own = {
        m["metric"]: m["value"]
        for m in json.loads((tmp_path / "probes" / "two-stages" / "eval_results.json").read_text())["metrics"]
    }
    seeded = {m["metric"]: m["value"] for m in entries["ablation/two-stages/seed0"]["metrics"]}
    assert seeded["judge_object_accuracy"] == pytest.approx(own["judge_object_accuracy"], abs=1e-3)
    assert seeded["real_r_precision@1"] == pytest.approx(own["real_r_precision@1"], abs=1e-3)
    summary = {m["metric"]: m["value"] for m in entries["ablation/vta"]["metrics"]}
    assert summary["real_r_precision@1_std"] == 0.0 and "judge_object_accuracy" in summary
    assert set(json.loads(results.read_text())) == set(entries)
    assert "| **two-stages** | mean ± std |" in (tmp_path / "eval" / "evaluation.md").read_text()
    with pytest.raises(SystemExit):
        evaluate_laviter.parse_args(["--models", f"x={tmp_path / 'nothing'}"])


def test_regression_probe_trains_the_generator_alone_and_reads_its_layout(tmp_path, smoke_vta):
    data_dir, vta, _ = smoke_vta
    results = tmp_path / "results.json"
    table = probe_generators.main(
        ["--init_from", str(vta), "--variants", "word-rnn", "--regression_steps", "3", "--eval_images", "8",
         "--train_examples", "32", "--test_examples", "16", "--readout_examples", "32", "--output_dir",
         str(tmp_path / "regression"), "--dataset_cache_dir", str(data_dir), "--results_file", str(results)]
    )  # fmt: skip
    row = table["variants"]["word-rnn"]
    assert 0 <= row["layout_place"] <= 1 and 0 <= row["layout_color"] <= 1
    assert row["real_layout_place"] == 1.0 and row["real_layout_color"] == 1.0  # the reading of real images
    assert not (tmp_path / "regression" / "word-rnn").exists()  # no phase-2 run
    assert "| word-rnn |" in (tmp_path / "regression" / "regression.md").read_text()
    recorded = json.loads(results.read_text())["probe-regression/word-rnn"]
    assert recorded["steps"] == 3 and {m["metric"] for m in recorded["metrics"]} >= {"layout_place", "layout_color"}


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(SystemExit):
        train_laviter.parse_args(["--phase", "joint"])  # no --init_from
    with pytest.raises(SystemExit):
        train_laviter.parse_args(["--model_size", "jwae-test"])
    with pytest.raises(ValueError, match="only lambda"):
        train_laviter.load_model_and_data(
            train_laviter.parse_args(
                ["--phase", "joint", "--init_from", str(tmp_path), "--model_config", '{"noise_dim": 8}']
            )
        )


def test_digit_grid_backbone_loads_the_pretrained_cnn_and_keeps_it_frozen(tmp_path, smoke_vta, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "jwae"))  # its pretraining script, for this test only
    import pretrain_grid_features
    from safetensors.torch import load_file
    from transformers import AutoModel

    data, vta, _ = smoke_vta
    grid = tmp_path / "grid"
    pretrain_grid_features.main(
        pretrain_grid_features.parse_args(
            ["--output_dir", str(grid), "--crop_size", "32", "--channels", "4", "--feature_dim", "4"]
            + ["--max_steps", "2", "--train_examples", "256"]
        )
    )
    vision = {"image_size": 64, "backbone": "digit_grid", "channels": [4], "grid_feature_dim": 4, "embed_dim": 16}
    config = json.dumps({"vision_config": vision, "text_config": {"max_length": 48}, "num_generator_stages": 3})
    smoke = ["--config", str(HERE / "configs" / "smoke.yaml"), "--dataset_cache_dir", str(data)]
    smoke += ["--model_config", config, "--max_steps", "2", "--eval_steps", "2"]
    with pytest.raises(ValueError, match="pass --grid_features"):
        _run(*smoke, "--output_dir", str(tmp_path / "none"))
    out = tmp_path / "vta"
    _run(*smoke, "--grid_features", str(grid), "--output_dir", str(out))
    trained = AutoModel.from_pretrained(out).image_encoder.grid.cnn.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in load_file(str(grid / "grid_features.safetensors")).items())
    with pytest.raises(ValueError, match="not digit_grid"):  # the smoke config's CNN backbone
        _run("--config", str(HERE / "configs" / "smoke.yaml"), "--grid_features", str(grid))
    with pytest.raises(ValueError, match="drop --grid_features"):
        _run("--phase", "generators", "--init_from", str(vta), "--grid_features", str(grid))


def test_a_local_cub_folder_through_its_builder(tmp_path):
    """The CUB-200 builder's fixture (ten captions per image): every caption a training pair, colour words as the
    AIMCoS attributes, no Caption MNIST object accuracy."""
    fixtures = ROOT / "tests" / "fixtures" / "caption_folders"
    model_config = (
        '{"vision_config": {"image_size": 32, "channels": [4, 8], "embed_dim": 16}, "text_config": {"max_length": 40}}'
    )
    result = _run(
        "--dataset", "cub200_captions", "--data_dir", str(fixtures / "cub200"), "--model_size", "laviter-test",
        "--model_config", model_config, "--max_steps", "2", "--batch_size", "4", "--eval_steps", "2",
        "--checkpointing_steps", "2", "--r_precision_candidates", "2", "--dataset_cache_dir", str(tmp_path / "cache"),
        "--output_dir", str(tmp_path / "cub"),
    )  # fmt: skip
    names = {m["metric"] for m in result["metrics"]}
    assert result["dataset"].startswith("cub200_captions") and "r_precision@1" in names
    assert "caption_object_accuracy" not in names


def test_two_processes_with_accelerate_launch_match_one_process(tmp_path):
    """Phase 1: the DAMSM softmax over the global batch (gathered), as one process computes it."""
    args = ["--config", HERE / "configs" / "smoke.yaml", "--dataset_cache_dir", tmp_path / "data"]
    args += ["--max_steps", "3", "--eval_steps", "3", "--checkpointing_steps", "3"]
    # rel 1e-2, not 1e-4: on the CPU each process's BatchNorm (the image encoder's) normalises with its own half's
    # statistics (torch's SyncBatchNorm, which the script switches on for GPUs, needs a GPU or XPU); measured gap
    # 0.2%. Without the gathered negatives the DAMSM softmax would run over 4 captions instead of 8, far off.
    assert_two_processes_match_one(HERE / "train_laviter.py", args, tmp_path, steps=3, rel=1e-2)


def test_run_ablation_trains_every_row_from_one_phase_two_model_and_tables_it(tmp_path, smoke_vta):
    """The seeded Table 2 driver: phase 1, phase 2 (with the shipped recipe's generator and place classifier), the
    four phase-3 runs from that phase-2 model, the table (with the phase-2 models' rows); run again, it trains nothing
    and gives the same table."""
    import run_ablation
    import yaml

    data_dir, _, _ = smoke_vta
    smoke = yaml.safe_load((HERE / "configs" / "smoke.yaml").read_text())
    recipe = yaml.safe_load((HERE / "configs" / "phase2_generators.yaml").read_text())["model_config"]
    phase2 = {k: v for k, v in smoke.items() if k != "model_config"} | {"phase": "generators", "model_config": recipe}
    (tmp_path / "phase2.yaml").write_text(yaml.safe_dump(phase2))
    sizes = "--train_examples 32 --test_examples 16 --eval_images 16 --r_precision_candidates 8"
    argv = [
        "--seeds", "3", "--output_dir", str(tmp_path / "ablation"), "--dataset_cache_dir", str(data_dir),
        "--phase1_config", str(HERE / "configs" / "smoke.yaml"), "--phase2_config", str(tmp_path / "phase2.yaml"),
        "--train_args", f"{sizes} --max_steps 2 --batch_size 8 --eval_steps 2 --checkpointing_steps 2",
        "--evaluate_args", sizes,
    ]  # fmt: skip
    folders = run_ablation.main(argv)
    assert set(folders) == {"full", "vta-only", "img2txt", "txt2img", "phase2"}
    seed_dir = tmp_path / "ablation" / "s3"
    assert folders["phase2"] == [str(seed_dir / "generators")]
    for name, (folder,) in folders.items():
        run = json.loads((Path(folder) / "args.json").read_text())
        init = "vta" if name == "phase2" else "generators"
        assert run["seed"] == 3 and Path(run["init_from"]).name == init, name
    table = json.loads((tmp_path / "ablation" / "evaluation" / "evaluation.json").read_text())
    assert {f"ablation/{m}/seed3" for m in folders} <= set(table)
    full = {m["metric"]: m["value"] for m in table["ablation/full"]["metrics"]}
    assert (
        0 <= full["real_r_precision@1"] <= 100
        and "judge_object_accuracy" in full
        and "caption_object_accuracy" in full
    )
    stamp = {p: p.stat().st_mtime for p in seed_dir.glob("*/model.safetensors")}
    run_ablation.main(argv)  # finished runs are not trained again
    assert {p: p.stat().st_mtime for p in seed_dir.glob("*/model.safetensors")} == stamp
    assert (
        json.loads((tmp_path / "ablation" / "evaluation" / "evaluation.json").read_text())["ablation/full"]
        == table["ablation/full"]
    )


def test_run_ablation_schedules_runs_after_the_phase_they_start_from(tmp_path, monkeypatch):
    """``--jobs 2`` over three seeds: every run starts only after its ``--init_from`` run has finished, each runs
    once, two go side by side, and a failed run stops what depends on it and is raised. (``_train`` is replaced by a
    recorder that writes the finished marker, to test the scheduling alone.)"""
    import threading
    import time

    import run_ablation

    events, lock = [], threading.Lock()

    def fake_train(folder, config, extra, args, fail=None):
        with lock:
            events.append(("start", folder))
        time.sleep(0.02)
        if folder == fail:
            raise RuntimeError(f"{folder} failed")
        folder.mkdir(parents=True)
        (folder / "eval_results.json").write_text("{}")
        with lock:
            events.append(("end", folder))
        return folder

    args = run_ablation.parse_args(["--seeds", "0", "1", "2", "--jobs", "2", "--output_dir", str(tmp_path / "a")])
    plans = [run_ablation.plan(seed, args) for seed in args.seeds]
    runs = [r for rs, _ in plans for r in rs]
    monkeypatch.setattr(run_ablation, "_train", fake_train)
    run_ablation.train_all(runs, args)
    starts = [f for kind, f in events if kind == "start"]
    assert sorted(map(str, starts)) == sorted(str(r.folder) for r in runs)  # each run once
    position = {(kind, f): i for i, (kind, f) in enumerate(events)}
    for r in runs:
        if r.after is not None:
            assert position[("end", r.after)] < position[("start", r.folder)], r.folder
    assert any(events[i][0] == events[i + 1][0] == "start" for i in range(len(events) - 1))  # side by side

    events.clear()
    args = run_ablation.parse_args(["--seeds", "5", "--jobs", "2", "--output_dir", str(tmp_path / "b")])
    runs, folders = run_ablation.plan(5, args)
    monkeypatch.setattr(run_ablation, "_train", lambda *a: fake_train(*a, fail=folders["phase2"]))
    with pytest.raises(RuntimeError, match="failed"):
        run_ablation.train_all(runs, args)
    assert [f.name for kind, f in events if kind == "start"] == ["vta", "generators"]  # no phase 3 after a failure
