"""The local hub server through the real client libraries over HTTP (no mocks): huggingface_hub in this process
(``hub_env``), transformers and datasets in fresh processes (``run_client``), and the raw protocol where a client
hides it (status codes, headers, ranges, robustness)."""

from __future__ import annotations

import hashlib
import http.client
import json
import urllib.parse
from pathlib import Path

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    ModelCard,
    ModelCardData,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub import constants as hf_constants
from huggingface_hub.errors import (
    BadRequestError,
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile, RepoFolder

from mmquant.hub.local_server import LocalHubServer

TOKEN, USER = "hf_test_token", "tester"  # what the hub_server fixture accepts (tests/hub/conftest.py)
BINARY = bytes(range(256)) * 64  # 16 KiB that is not text


@pytest.fixture
def api(hub_env: LocalHubServer) -> HfApi:
    return HfApi(endpoint=hub_env.endpoint, token=TOKEN)


@pytest.fixture
def repo(api: HfApi, request: pytest.FixtureRequest) -> str:
    """A fresh model repo named after the test."""
    repo_id = f"{USER}/{request.node.name.replace('[', '-').replace(']', '')}"
    api.create_repo(repo_id)
    return repo_id


def raw(server: LocalHubServer, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    """One plain HTTP request: (status, headers, body)."""
    host, port = urllib.parse.urlsplit(server.endpoint).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------- accounts and repos
def test_whoami_tokens_and_agent_harnesses(hub_env):
    assert HfApi(endpoint=hub_env.endpoint, token=TOKEN).whoami()["name"] == USER
    assert HfApi(endpoint=hub_env.endpoint).whoami()["name"] == USER  # HF_TOKEN from the environment
    with pytest.raises(HfHubHTTPError, match="Invalid user token") as info:
        HfApi(endpoint=hub_env.endpoint, token="hf_wrong").whoami()
    assert info.value.response.status_code == 401
    status, headers, _ = raw(hub_env, "GET", "/api/whoami-v2")
    assert status == 401 and "token" in headers["X-Error-Message"]
    status, _, body = raw(hub_env, "GET", "/api/agent-harnesses")
    assert status == 200 and json.loads(body) == {"standardEnvVars": [], "harnesses": {}}


def test_create_exist_ok_private_and_delete(api, hub_env):
    url = api.create_repo(f"{USER}/created")
    assert url == f"{hub_env.endpoint}/{USER}/created" and url.repo_id == f"{USER}/created"
    with pytest.raises(HfHubHTTPError) as info:
        api.create_repo(f"{USER}/created")
    assert info.value.response.status_code == 409
    assert api.create_repo(f"{USER}/created", exist_ok=True).repo_id == f"{USER}/created"
    assert api.create_repo("created-ds", repo_type="dataset").repo_type == "dataset"
    assert api.create_repo("created-space", repo_type="space", space_sdk="static").repo_type == "space"
    assert api.dataset_info(f"{USER}/created-ds").id == f"{USER}/created-ds"
    assert api.space_info(f"{USER}/created-space").sdk == "static"
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(f"{USER}/created-ds")  # a dataset is not a model

    api.create_repo(f"{USER}/secret", private=True)
    assert api.model_info(f"{USER}/secret").private
    anonymous = HfApi(endpoint=hub_env.endpoint, token=False)
    assert not anonymous.repo_exists(f"{USER}/secret") and anonymous.repo_exists(f"{USER}/created")

    api.delete_repo(f"{USER}/created")
    assert not api.repo_exists(f"{USER}/created")
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo(f"{USER}/created")
    api.delete_repo(f"{USER}/created", missing_ok=True)


# ---------------------------------------------------------------------------------------------- uploads and listing
def test_upload_regular_and_lfs_then_list(api, repo):
    text = api.upload_file(path_or_fileobj=b"hello\n", path_in_repo="docs/a.txt", repo_id=repo)
    api.upload_file(path_or_fileobj=BINARY, path_in_repo="model.safetensors", repo_id=repo)
    api.upload_file(path_or_fileobj=b"some text, stored by suffix", path_in_repo="w/weights.bin", repo_id=repo)
    again = api.upload_file(path_or_fileobj=b"hello\n", path_in_repo="docs/a.txt", repo_id=repo)
    assert again.oid == api.model_info(repo).sha != text.oid  # unchanged file: skipped, no new commit

    assert api.list_repo_files(repo) == ["docs/a.txt", "model.safetensors", "w/weights.bin"]
    tree = {e.path: e for e in api.list_repo_tree(repo, recursive=True)}
    assert set(tree) == {"docs", "docs/a.txt", "model.safetensors", "w", "w/weights.bin"}
    assert isinstance(tree["docs"], RepoFolder) and tree["docs/a.txt"].lfs is None
    assert tree["model.safetensors"].lfs.sha256 and tree["model.safetensors"].size == len(BINARY)
    assert tree["w/weights.bin"].lfs is not None  # binary suffix: LFS whatever the content
    top = [e.path for e in api.list_repo_tree(repo)]
    assert sorted(top) == ["docs", "model.safetensors", "w"]
    assert [e.path for e in api.list_repo_tree(repo, path_in_repo="docs")] == ["docs/a.txt"]
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(repo, path_in_repo="nowhere"))

    info = api.get_paths_info(repo, ["docs/a.txt", "docs", "missing.txt"], expand=True)
    assert [(type(i), i.path) for i in info] == [(RepoFile, "docs/a.txt"), (RepoFolder, "docs")]
    assert info[0].last_commit.oid == text.oid and info[0].last_commit.title.startswith("Upload docs/a.txt")

    assert api.file_exists(repo, "model.safetensors") and not api.file_exists(repo, "nope.txt")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo, "nope.txt")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo, "docs/a.txt", revision="no-such-branch")
    assert Path(hf_hub_download(repo, "model.safetensors")).read_bytes() == BINARY


def test_upload_folder_snapshot_and_offline_cache(api, repo, tmp_path, monkeypatch):
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"a": 1}')
    (folder / "sub" / "data.bin").write_bytes(BINARY)
    (folder / "sub" / "notes.md").write_text("notes")
    (folder / "skip.log").write_text("ignored")
    commit = api.upload_folder(folder_path=folder, repo_id=repo, ignore_patterns="*.log", commit_message="folder")
    assert api.list_repo_files(repo) == ["config.json", "sub/data.bin", "sub/notes.md"]
    assert api.list_repo_commits(repo)[0].title == "folder"

    local = snapshot_download(repo)
    assert local.endswith(commit.oid)
    assert Path(local, "sub", "data.bin").read_bytes() == BINARY and Path(local, "config.json").is_file()

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)  # the network is off: everything from the cache
    assert snapshot_download(repo) == local
    assert Path(hf_hub_download(repo, "config.json")).read_text() == '{"a": 1}'


def test_branches_tags_and_old_commits(api, repo):
    first = api.upload_file(path_or_fileobj=b"v1", path_in_repo="a.txt", repo_id=repo)
    api.create_branch(repo, branch="dev")
    dev = api.upload_file(path_or_fileobj=b"dev", path_in_repo="a.txt", repo_id=repo, revision="dev")
    second = api.create_commit(
        repo,
        [CommitOperationAdd("a.txt", b"v2"), CommitOperationAdd("b.txt", b"b")],
        commit_message="second",
        parent_commit=first.oid,
    )
    api.create_tag(repo, tag="v1.0", revision=first.oid)

    def read(revision: str | None = None) -> str:
        return Path(hf_hub_download(repo, "a.txt", revision=revision)).read_text()

    assert (read(), read("dev"), read(first.oid), read(dev.oid), read("v1.0")) == ("v2", "dev", "v1", "dev", "v1")
    assert not api.file_exists(repo, "b.txt", revision="dev") and api.file_exists(repo, "b.txt")
    refs = api.list_repo_refs(repo)
    assert {b.name: b.target_commit for b in refs.branches} == {"main": second.oid, "dev": dev.oid}
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1.0", first.oid)]
    assert [c.commit_id for c in api.list_repo_commits(repo)][:2] == [second.oid, first.oid]

    with pytest.raises(HfHubHTTPError) as info:  # main moved on since `first`
        api.create_commit(repo, [CommitOperationAdd("c.txt", b"c")], commit_message="x", parent_commit=first.oid)
    assert info.value.response.status_code == 412
    with pytest.raises(BadRequestError, match="pull requests are not supported"):
        api.create_commit(repo, [CommitOperationAdd("c.txt", b"c")], commit_message="pr", create_pr=True)
    with pytest.raises(HfHubHTTPError) as info:
        api.create_branch(repo, branch="dev")
    assert info.value.response.status_code == 409
    api.create_branch(repo, branch="dev", exist_ok=True)
    api.create_branch(repo, branch="from-first", revision=first.oid)
    assert read("from-first") == "v1"
    api.delete_branch(repo, branch="dev")
    api.delete_tag(repo, tag="v1.0")
    refs = api.list_repo_refs(repo)
    assert sorted(b.name for b in refs.branches) == ["from-first", "main"] and refs.tags == []
    assert read(dev.oid) == "dev"  # the commit outlives its branch

    api.create_commit(repo, [CommitOperationDelete("b.txt")], commit_message="delete")
    assert api.list_repo_files(repo) == ["a.txt"]
    with pytest.raises(EntryNotFoundError):
        api.delete_file("b.txt", repo)


def test_errors_a_user_meets(api, repo, hub_env):
    anonymous = HfApi(endpoint=hub_env.endpoint, token=False)
    with pytest.raises(HfHubHTTPError, match="Invalid credentials") as info:
        anonymous.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo)
    assert info.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as info:
        anonymous.create_repo(f"{USER}/by-nobody")
    assert info.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(f"{USER}/never-created")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(f"{USER}/never-created", "config.json")
    with pytest.raises(RepositoryNotFoundError):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=f"{USER}/never-created")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(repo, revision="0" * 40)


# ---------------------------------------------------------------------------------------------- cards
def test_model_card_validate_and_push(api, repo):
    card = ModelCard.from_template(ModelCardData(license="mit", library_name="mmquant", tags=["vq"]), model_id="x")
    card.validate()
    with pytest.raises(ValueError, match='"library_name" must be a string'):
        ModelCard("---\nlibrary_name: 3\n---\n# A number where the Hub wants a string\n").validate()

    card.push_to_hub(repo)
    loaded = ModelCard.load(repo)
    assert loaded.data.license == "mit" and loaded.data.tags == ["vq"] and loaded.text == card.text
    info = api.model_info(repo)
    assert info.library_name == "mmquant" and info.card_data.license == "mit"
    for broken in (b"---\nlicense: [mit\n---\n", b"---\n- a list\n---\n"):  # checked before anything is uploaded
        with pytest.raises(ValueError, match="Invalid metadata in README.md"):
            api.upload_file(path_or_fileobj=broken, path_in_repo="README.md", repo_id=repo)
    assert api.list_repo_files(repo) == ["README.md"] and ModelCard.load(repo).data.license == "mit"


@pytest.mark.slow  # a subprocess run
# ---------------------------------------------------------------------------------------------- other libraries
def test_datasets_load_dataset_from_parquet(api, run_client, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": ["a", "b", "c"], "label": [0, 1, 0]}), path)
    repo_id = api.create_repo(f"{USER}/tiny-parquet", repo_type="dataset").repo_id
    api.upload_file(path_or_fileobj=path, path_in_repo="data/train.parquet", repo_id=repo_id, repo_type="dataset")
    tree = api.list_repo_tree(repo_id, repo_type="dataset", recursive=True)
    assert [e.lfs is not None for e in tree if isinstance(e, RepoFile)] == [True]
    out = run_client(
        f"""
        import json, datasets
        ds = datasets.load_dataset("{repo_id}")
        print(json.dumps({{"splits": list(ds), "rows": ds["train"].to_list()}}))
        """
    )
    result = json.loads(out.splitlines()[-1])
    assert result == {"splits": ["train"], "rows": [{"text": t, "label": n} for t, n in zip("abc", [0, 1, 0])]}


@pytest.mark.slow  # a subprocess run
def test_transformers_push_to_hub_then_from_pretrained_in_a_fresh_process(run_client):
    pushed = run_client(
        f"""
        import json, torch
        from transformers import BertConfig, BertModel
        torch.manual_seed(0)
        config = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32, max_position_embeddings=32)
        model = BertModel(config)
        first = model.push_to_hub("{USER}/tiny-bert")
        torch.save(model.state_dict(), "first.pt")
        with torch.no_grad():
            model.embeddings.word_embeddings.weight.add_(1.0)
        second = model.push_to_hub("{USER}/tiny-bert", commit_message="second")
        print(json.dumps({{"first": first.oid, "second": second.oid}}))
        """
    )
    commits = json.loads(pushed.splitlines()[-1])
    assert commits["first"] != commits["second"]
    loaded = run_client(
        f"""
        import torch
        from huggingface_hub import HfApi
        from transformers import AutoModel
        expected = torch.load("first.pt", weights_only=True)
        old = AutoModel.from_pretrained("{USER}/tiny-bert", revision="{commits["first"]}").state_dict()
        assert old.keys() == expected.keys() and all(torch.equal(old[k], expected[k]) for k in expected)
        new = AutoModel.from_pretrained("{USER}/tiny-bert").state_dict()
        key = "embeddings.word_embeddings.weight"
        assert torch.equal(new[key], expected[key] + 1.0)
        print("ok", sorted(HfApi().list_repo_files("{USER}/tiny-bert")))
        """,
        token=None,  # reading a public repo needs no token
    )
    assert loaded.strip() == "ok ['README.md', 'config.json', 'model.safetensors']"  # with its generated card


# ---------------------------------------------------------------------------------------------- the protocol itself
def test_resolve_headers_ranges_and_lfs_batch(api, repo, hub_env):
    api.upload_file(path_or_fileobj=BINARY, path_in_repo="w.bin", repo_id=repo)
    sha = api.model_info(repo).sha
    lfs_oid = api.get_paths_info(repo, "w.bin")[0].lfs.sha256

    status, headers, body = raw(hub_env, "HEAD", f"/{repo}/resolve/main/w.bin")
    assert status == 200 and body == b""
    assert headers["X-Repo-Commit"] == sha and headers["X-Linked-Etag"] == f'"{lfs_oid}"'
    assert headers["X-Linked-Size"] == headers["Content-Length"] == str(len(BINARY))
    status, headers, body = raw(hub_env, "GET", f"/{repo}/resolve/{sha}/w.bin", headers={"Range": "bytes=10-19"})
    assert status == 206 and body == BINARY[10:20] and headers["Content-Range"] == f"bytes 10-19/{len(BINARY)}"
    status, _, body = raw(hub_env, "GET", f"/{repo}/resolve/main/w.bin", headers={"Range": "bytes=-5"})
    assert status == 206 and body == BINARY[-5:]
    status, headers, _ = raw(hub_env, "GET", f"/{repo}/resolve/main/missing.bin")
    assert status == 404 and headers["X-Error-Code"] == "EntryNotFound"
    status, headers, _ = raw(hub_env, "GET", f"/{USER}/nothing-here/resolve/main/a.txt")
    assert status == 401 and headers["X-Error-Code"] == "RepoNotFound"  # anonymous, as on the Hub

    batch = {"operation": "upload", "objects": [{"oid": lfs_oid, "size": len(BINARY)}, {"oid": "f" * 64, "size": 1}]}
    status, _, body = raw(
        hub_env,
        "POST",
        f"/{repo}.git/info/lfs/objects/batch",
        json.dumps(batch).encode(),
        {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/vnd.git-lfs+json"},
    )
    objects = json.loads(body)["objects"]
    assert status == 200 and "actions" not in objects[0] and objects[1]["actions"]["upload"]["href"]
    status, _, _ = raw(hub_env, "PUT", "/lfs-objects/" + "f" * 64, b"not matching")
    assert status == 400


def test_unknown_routes_and_handler_errors_keep_the_server_up(hub_env, repo):
    status, headers, body = raw(hub_env, "GET", "/api/not-an-endpoint?x=1")
    assert status == 404 and "GET /api/not-an-endpoint" in json.loads(body)["error"]
    assert "GET /api/not-an-endpoint" in hub_env.unhandled
    errors = len(hub_env.errors)
    bad_commit = json.dumps({"key": "file", "value": {"path": "a.txt"}}).encode()  # no content: a handler bug
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
    status, _, body = raw(hub_env, "POST", f"/api/models/{repo}/commit/main", bad_commit, auth)
    assert status == 500 and "KeyError" in json.loads(body)["error"] and len(hub_env.errors) == errors + 1
    hub_env.errors.pop()
    assert raw(hub_env, "GET", f"/api/models/{repo}")[0] == 200


def test_a_restarted_server_serves_the_same_repos(hub_env, tmp_path):
    with LocalHubServer(tmp_path / "root") as server:
        api = HfApi(endpoint=server.endpoint, token=TOKEN)
        api.create_repo(f"{USER}/kept")
        commit = api.upload_file(path_or_fileobj=BINARY, path_in_repo="w.bin", repo_id=f"{USER}/kept")
    assert (tmp_path / "root" / "blobs" / hashlib.sha256(BINARY).hexdigest()).read_bytes() == BINARY  # on disk
    with LocalHubServer(tmp_path / "root") as server:
        api = HfApi(endpoint=server.endpoint, token=TOKEN)
        assert api.model_info(f"{USER}/kept").sha == commit.oid
        path = hf_hub_download(f"{USER}/kept", "w.bin", endpoint=server.endpoint, cache_dir=tmp_path / "cache")
        assert Path(path).read_bytes() == BINARY
