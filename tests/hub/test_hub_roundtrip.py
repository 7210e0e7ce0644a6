"""Publishing round trips through the real client libraries over HTTP, against the local hub server: models and
revisions, the pipeline, a dataset, a metric, the publish CLI, cards, and the errors a user meets."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow  # subprocess/integration runs: CI runs them (-m "not gpu"); the fast default skips them


def test_hub_basics(run_client):
    out = run_client(
        """
        import json
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download
        from huggingface_hub.errors import EntryNotFoundError, RemoteEntryNotFoundError, RepositoryNotFoundError

        api = HfApi()
        assert api.whoami()["name"] == "tester"
        api.create_repo("tester/basics")
        api.create_repo("tester/basics", exist_ok=True)
        api.upload_file(path_or_fileobj=b"hello", path_in_repo="notes/a.txt", repo_id="tester/basics")
        first = api.upload_file(path_or_fileobj=bytes(range(256)) * 8, path_in_repo="w.bin", repo_id="tester/basics")
        files = api.list_repo_files("tester/basics")
        tree = {e.path: e for e in api.list_repo_tree("tester/basics", recursive=True)}
        assert tree["w.bin"].lfs is not None and tree["notes/a.txt"].lfs is None  # binary went through LFS
        info = api.get_paths_info("tester/basics", ["notes/a.txt", "missing.txt"])
        assert [i.path for i in info] == ["notes/a.txt"]
        assert api.file_exists("tester/basics", "w.bin") and not api.file_exists("tester/basics", "nope")
        try:
            hf_hub_download("tester/basics", "nope.txt")
            raise SystemExit("a missing file downloaded")
        except (EntryNotFoundError, RemoteEntryNotFoundError):
            pass
        api.create_branch("tester/basics", branch="v2")
        api.upload_file(path_or_fileobj=b"hello again", path_in_repo="notes/a.txt", repo_id="tester/basics",
                        revision="v2")
        new = open(hf_hub_download("tester/basics", "notes/a.txt", revision="v2")).read()
        old = open(hf_hub_download("tester/basics", "notes/a.txt", revision=first.oid)).read()
        main = open(hf_hub_download("tester/basics", "notes/a.txt")).read()
        folder = snapshot_download("tester/basics")
        refs = sorted(b.name for b in api.list_repo_refs("tester/basics").branches)
        try:
            api.model_info("tester/does-not-exist")
            raise SystemExit("a missing repo answered")
        except RepositoryNotFoundError:
            pass
        print(json.dumps({"files": files, "new": new, "old": old, "main": main, "refs": refs, "folder": folder}))
        """
    )
    result = json.loads(out.splitlines()[-1])
    assert result["files"] == ["notes/a.txt", "w.bin"]
    assert (result["new"], result["old"], result["main"]) == ("hello again", "hello", "hello")
    assert result["refs"] == ["main", "v2"]
    # the snapshot is in the cache: it loads again with the network off
    offline = run_client(
        """
        from huggingface_hub import snapshot_download
        print(snapshot_download("tester/basics"))
        """,
        offline=True,
    )
    assert offline.strip() == result["folder"]


def test_errors_a_user_meets(run_client):
    out = run_client(
        """
        import mmquant
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
        from transformers import AutoModel

        try:
            mmquant.create_model("test").push_to_hub("tester/no-token")
            print("pushed without a token")
        except (HfHubHTTPError, ValueError, OSError) as e:
            print("no token:", type(e).__name__, e)
        try:
            AutoModel.from_pretrained("tester/never-created")
        except (OSError, RepositoryNotFoundError) as e:
            print("missing repo:", type(e).__name__, e)
        """,
        token=None,
    )
    assert "pushed without a token" not in out
    assert "no token:" in out and "401" in out
    assert "missing repo:" in out and "tester/never-created" in out


MODELS = {
    "optvq": (
        "mmquant.create_model('test')",
        "torch.rand(2, 3, 16, 16) * 2 - 1",
        "model.encode_to_indices(x)",
    ),
    "mxqvae": (
        "mmquant.create_model('mxqvae-test', vocab_size=40)",
        "(torch.rand(2, 3, 64, 64) * 2 - 1, torch.randint(0, 40, (2, 48)))",
        "model.encode_to_indices(*x)",
    ),
    "mxqvae_prior": (
        "mmquant.MXQVAEPriorForCausalLM(mmquant.MXQVAEPriorConfig("
        "stage1_config=mmquant.get_config('mxqvae-test').to_dict(), n_layer=1, n_head=2, n_embd=32))",
        "torch.randint(0, 32, (2, 73))",
        "model(input_ids=x).logits",
    ),
    "caption_mnist_judge": (
        "mmquant.create_model('caption-mnist-judge')",
        "torch.rand(2, 3, 64, 64) * 2 - 1",
        "model(x).digit_logits",
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_model_push_then_load_in_a_fresh_process_and_by_revision(run_client, name):
    build, inputs, output = MODELS[name]
    out = run_client(
        f"""
        import json, torch, mmquant
        from huggingface_hub import HfApi, ModelCard
        torch.manual_seed(0)
        model = {build}.eval()
        x = {inputs}
        first = model.push_to_hub("tester/{name}")
        with torch.no_grad():
            expected = {output}
            for p in model.parameters():
                p.add_(0.5)
        second = model.push_to_hub("tester/{name}", commit_message="second")
        torch.save({{"x": x, "expected": expected}}, "expected.pt")
        card = ModelCard.load("tester/{name}")
        card.validate()
        print(json.dumps({{"first": first.oid, "second": second.oid, "library": card.data.library_name}}))
        """
    )
    commits = json.loads(out.splitlines()[-1])
    assert commits["library"] == "mmquant" and commits["first"] != commits["second"]
    loaded = run_client(
        f"""
        import torch, mmquant
        from transformers import AutoModel, AutoModelForCausalLM
        auto = AutoModelForCausalLM if "{name}" == "mxqvae_prior" else AutoModel
        saved = torch.load("expected.pt", weights_only=True)
        x = saved["x"]
        model = auto.from_pretrained("tester/{name}", revision="{commits["first"]}").eval()
        with torch.no_grad():
            assert torch.equal({output}, saved["expected"]), "the first revision differs"
            latest = auto.from_pretrained("tester/{name}").eval()
            model = latest
            assert not torch.equal({output}, saved["expected"]), "the second commit did not change the weights"
        print("ok", type(latest).__name__)
        """
    )
    assert loaded.strip().startswith("ok")


def test_pipeline_round_trip(run_client):
    out = run_client(
        """
        import torch, mmquant
        from mmquant.data.caption_grammar import caption_vocabulary
        from mmquant.data.tokenizer import build_word_tokenizer
        from mmquant.pipelines import MXQVAEPipeline
        torch.manual_seed(0)
        tokenizer = build_word_tokenizer(caption_vocabulary(("white", "red", "green", "blue")), model_max_length=48)
        stage1 = mmquant.create_model("mxqvae-test", vocab_size=len(tokenizer)).eval()
        prior = mmquant.MXQVAEPriorForCausalLM(
            mmquant.MXQVAEPriorConfig(stage1_config=stage1.config.to_dict(), n_layer=1, n_head=2, n_embd=32)
        ).eval()
        pipe = MXQVAEPipeline(stage1=stage1, prior=prior, tokenizer=tokenizer)
        pipe.push_to_hub("tester/pipeline")
        torch.save(pipe(num_samples=2, seed=0).codes, "codes.pt")
        """
    )
    loaded = run_client(
        """
        import torch
        from mmquant.pipelines import MXQVAEPipeline
        pipe = MXQVAEPipeline.from_pretrained("tester/pipeline")
        assert torch.equal(pipe(num_samples=2, seed=0).codes, torch.load("codes.pt", weights_only=True))
        print("ok")
        """
    )
    assert out is not None and loaded.strip() == "ok"


def test_dataset_push_and_load_with_images(run_client, repo_root):
    out = run_client(
        """
        import json, numpy as np, datasets
        from mmquant.data.cli import main
        main(["build", "caption_mnist", "--config", "quad1", "--num_examples", "train=5", "test=3",
              "--cache_dir", "cache", "--push_to_hub", "tester/caption-mnist"])
        from mmquant.data.builders import build_dataset
        local = build_dataset("caption_mnist", "quad1", cache_dir="cache", num_examples={"train": 5, "test": 3})
        remote = datasets.load_dataset("tester/caption-mnist", "quad1", cache_dir="load_cache")
        same_images = all(
            np.array_equal(np.asarray(a["image"]), np.asarray(b["image"]))
            for a, b in zip(local["test"], remote["test"])
        )
        from huggingface_hub import DatasetCard
        card = DatasetCard.load("tester/caption-mnist", repo_type="dataset")
        print(json.dumps({"captions": remote["train"]["caption"][:] == local["train"]["caption"][:],
                           "images": same_images, "configs": [c["config_name"] for c in card.data.configs],
                           "pretty": card.data.pretty_name, "rows": "| train | 5 |" in card.text}))
        """
    )
    result = json.loads(out.splitlines()[-1])
    assert result == {"captions": True, "images": True, "configs": ["quad1"], "pretty": "Caption MNIST", "rows": True}


def test_metric_repo_downloads_and_loads(run_client):
    out = run_client(
        """
        import evaluate
        from huggingface_hub import snapshot_download
        from mmquant.hub.publish import publish_metric
        from mmquant.metrics.functional import psnr
        import torch
        publish_metric("psnr", "tester/psnr")
        folder = snapshot_download("tester/psnr", repo_type="space", local_dir="psnr")
        module = evaluate.load(folder)
        result = module.compute(predictions=[[[128.0, 128.0]]], references=[[[153.5, 153.5]]], data_range=255)
        print(round(result["psnr"], 4))
        """
    )
    assert out.strip().splitlines()[-1] == "20.0"


def test_publish_cli_training_output(run_client, tmp_path):
    out = run_client(
        """
        import json, subprocess, sys, torch, mmquant
        from pathlib import Path
        from mmquant.training import save_image_grid
        run = Path("outputs/run")
        model = mmquant.create_model("test").eval()
        model.save_pretrained(run)
        (run / "eval_results.json").write_text(json.dumps({
            "dataset": "synthetic", "command": "python train.py", "commit": "abc", "steps": 2, "processes": 1,
            "metrics": [{"metric": "psnr", "split": "test", "value": 12.5, "unit": "dB"}]}))
        save_image_grid([torch.zeros(2, 3, 16, 16)], run / "samples" / "step-2.png")
        done = subprocess.run([sys.executable, "-m", "mmquant.cli", "publish", str(run), "--repo_id", "tester/run"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        print(done.stdout.strip().splitlines()[0])
        from huggingface_hub import HfApi, ModelCard
        from transformers import AutoModel
        files = sorted(HfApi().list_repo_files("tester/run"))
        card = ModelCard.load("tester/run")
        x = torch.rand(2, 3, 16, 16) * 2 - 1
        loaded = AutoModel.from_pretrained("tester/run").eval()
        same = torch.equal(loaded.encode_to_indices(x), model.encode_to_indices(x))
        print(json.dumps({"files": files, "same": same, "psnr": [r.metric_value for r in card.data.eval_results],
                          "sample": "![samples](samples.png)" in card.text}))
        """
    )
    lines = out.strip().splitlines()
    assert lines[0].startswith("published outputs/run to tester/run")
    result = json.loads(lines[-1])
    assert result["files"] == ["README.md", "config.json", "eval_results.json", "model.safetensors", "samples.png"]
    assert result["same"] and result["psnr"] == [12.5] and result["sample"]
