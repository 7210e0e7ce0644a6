"""The bundled hub server confines every path to its root: repo ids, organisations, commit file paths and LFS oids
are checked against strict patterns (400 otherwise), blob paths cannot resolve outside ``blobs/``, and the
well-known test token is refused when the server is bound to a non-loopback address. The real server on 127.0.0.1,
spoken to over plain HTTP (what an attacker would send) and through huggingface_hub."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import urllib.parse

import pytest

from mmquant.hub.local_server import LocalHubServer, is_loopback, main

TOKEN = "hf_test_token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = b"top secret outside the hub root\n"


@pytest.fixture
def hub(tmp_path):
    (tmp_path / "secret.txt").write_bytes(SECRET)  # a file beside the root the server must never serve
    with LocalHubServer(tmp_path / "root") as server:
        yield server
    assert not server.errors, server.errors  # every bad input is a clean 4xx, never a handler crash


def raw(server, method, path, body=None, headers=None):
    host, port = urllib.parse.urlsplit(server.endpoint).netloc.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        conn.request(method, path, body=body, headers={**AUTH, **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def commit(server, repo_id, *ops):
    lines = [{"key": "header", "value": {"summary": "x"}}, *ops]
    body = "\n".join(json.dumps(line) for line in lines).encode()
    return raw(server, "POST", f"/api/models/{repo_id}/commit/main", body, {"Content-Type": "application/x-ndjson"})


def make_repo(server, name="r"):
    status, _ = raw(server, "POST", "/api/repos/create", {"name": name, "type": "model"})
    assert status == 200
    return f"tester/{name}"


def file_op(path, data=b"x"):
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


BAD_OIDS = [
    "../../secret.txt",
    "../" * 6 + "etc/passwd",
    "/etc/passwd",
    "A" * 64,  # upper case
    "0" * 63,
    "0" * 65,
    "g" * 64,
    "0" * 62 + "/.",
    "",
    None,
    123,
]


@pytest.mark.parametrize("oid", BAD_OIDS, ids=repr)
def test_lfs_oid_must_be_64_hex(hub, oid):
    repo = make_repo(hub)
    status, body = commit(hub, repo, {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid}})
    assert status == 400 and b"Invalid sha256 oid" in body, (status, body)
    # nothing was committed: the path is not served, let alone the file outside the root
    status, body = raw(hub, "GET", f"/{repo}/resolve/main/w.bin")
    assert status == 404 and SECRET not in body


def test_lfs_batch_refuses_bad_oid(hub):
    repo = make_repo(hub)
    status, body = raw(
        hub,
        "POST",
        f"/{repo}.git/info/lfs/objects/batch",
        {"operation": "upload", "objects": [{"oid": "../../secret.txt", "size": 3}]},
    )
    assert status == 200 and json.loads(body)["objects"][0]["error"]["code"] == 422
    status, _ = raw(hub, "PUT", "/lfs-objects/..%2F..%2Fsecret.txt", b"abc")
    assert status == 404


BAD_PATHS = [
    "../x",
    "../../secret.txt",
    "a/../../b",
    "/etc/passwd",
    "a//b",
    "a/./b",
    ".",
    "..",
    "a\\..\\b",
    "a\x00b",
    "",
    "x" * 2000,
    None,
]


@pytest.mark.parametrize("op", ["file", "lfsFile", "deletedFile", "deletedFolder"])
@pytest.mark.parametrize("path", BAD_PATHS, ids=repr)
def test_commit_file_paths_are_confined(hub, op, path):
    repo = make_repo(hub)
    if op == "file":
        line = file_op(path)
    elif op == "lfsFile":
        line = {"key": "lfsFile", "value": {"path": path, "oid": hashlib.sha256(b"x").hexdigest()}}
    else:
        line = {"key": op, "value": {"path": path}}
    status, body = commit(hub, repo, line)
    assert status == 400 and b"Invalid file path" in body, (status, body)


def test_good_paths_still_work(hub):
    repo = make_repo(hub)
    status, _ = commit(hub, repo, file_op("sub/dir/.hidden-ok.txt", b"hello"), file_op("a..b.txt", b"dots"))
    assert status == 200
    assert raw(hub, "GET", f"/{repo}/resolve/main/sub/dir/.hidden-ok.txt") == (200, b"hello")
    assert raw(hub, "GET", f"/{repo}/resolve/main/a..b.txt") == (200, b"dots")


@pytest.mark.parametrize("org", ["..", "../x", "a/b", ".hidden", "a..b", "-x", "x" * 200, "", 5, ["a"]], ids=repr)
def test_organization_and_name_are_checked(hub, org):
    status, body = raw(hub, "POST", "/api/repos/create", {"name": "r", "organization": org})
    if org == "":  # empty means "the caller's own namespace", as on the Hub
        assert status == 200
        return
    assert status == 400 and b"Invalid organization" in body, (status, body)
    status, body = raw(hub, "DELETE", "/api/repos/delete", {"name": "r", "organization": org})
    assert status == 400


@pytest.mark.parametrize("name", ["..", "../x", "a/b", "x.", ".x"], ids=repr)
def test_repo_name_checked_on_create_and_delete(hub, name):
    assert raw(hub, "POST", "/api/repos/create", {"name": name})[0] == 400
    assert raw(hub, "DELETE", "/api/repos/delete", {"name": name})[0] == 400


@pytest.mark.parametrize(
    "url",
    [
        "/api/models/%2E%2E/x",
        "/api/models/tester/%2E%2E",
        "/api/models/..%2F..%2Fetc/x/tree/main",
        "/%2E%2E/x/resolve/main/secret.txt",
        "/tester/%2E%2E/resolve/main/a",
        "/%2E%2E/%2E%2E.git/info/lfs/objects/batch",
    ],
)
def test_repo_ids_in_urls_are_checked(hub, url):
    method = "POST" if url.endswith("batch") else "GET"
    status, body = raw(hub, method, url)
    assert status == 400 and SECRET not in body, (status, body)


def test_stored_state_cannot_point_outside(hub, tmp_path):
    """A repos.json edited to name a blob outside the store is refused when served, not followed."""
    repo = make_repo(hub)
    assert commit(hub, repo, file_op("f.txt", b"ok"))[0] == 200
    with hub.store.lock:
        head = hub.store.repos[f"model/{repo}"]["branches"]["main"]
        hub.store.repos[f"model/{repo}"]["commits"][head]["files"]["f.txt"]["sha256"] = "../../secret.txt"
    status, body = raw(hub, "GET", f"/{repo}/resolve/main/f.txt")
    assert status == 400 and SECRET not in body
    hub.errors.clear()


def test_huggingface_hub_client_is_refused_cleanly(hub, tmp_path):
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    repo = make_repo(hub, "client")
    local = tmp_path / "f.txt"
    local.write_text("x")
    with pytest.raises((HfHubHTTPError, ValueError)):
        api.create_commit(repo, [CommitOperationAdd("a/../../b.txt", str(local))], commit_message="x")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.org", ""])
def test_test_token_refused_off_loopback(tmp_path, host):
    with pytest.raises(ValueError, match=f"host={host!r}: the well-known test token 'hf_test_token'.*127.0.0.1"):
        LocalHubServer(tmp_path, host=host)
    with pytest.raises(ValueError, match="well-known test token"):
        LocalHubServer(tmp_path, host=host, tokens={"hf_test_token": "me", "s3cret": "me"})


def test_main_refuses_test_token_off_loopback(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["--root", str(tmp_path), "--host", "0.0.0.0", "--port", "0"])
    assert info.value.code == 2
    assert "--host '0.0.0.0': the well-known test token" in capsys.readouterr().err


def test_loopback_hosts_and_own_tokens_allowed(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("127.5.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    with LocalHubServer(tmp_path / "a", host="127.0.0.1") as server:
        assert server.endpoint.startswith("http://127.0.0.1:")
    # a secret token of one's own may be served on any address (0.0.0.0 binds but is not contacted here)
    server = LocalHubServer(tmp_path / "b", host="0.0.0.0", tokens={"s3cret-token": "me"})
    server._httpd.server_close()
