"""A small Hugging Face Hub-compatible HTTP server for tests and offline demos (no pip package gives an
upload-capable local hub). Files are stored for real, content-addressed on disk; repos, commits and refs live in
memory. The real clients (huggingface_hub, transformers, diffusers, datasets, evaluate) talk to it over HTTP when
``HF_ENDPOINT`` points at it (with ``HF_HUB_DISABLE_XET=1``).

    with LocalHubServer(tmp_path) as hub:               # http://127.0.0.1:<free port>
        os.environ["HF_ENDPOINT"] = hub.endpoint         # before huggingface_hub is imported
    python -m mmquant.hub.local_server --root /tmp/hub --port 8123

Endpoints: ``/api/whoami-v2``, ``/api/agent-harnesses``, ``/api/validate-yaml``, ``/api/repos/create``,
``/api/repos/delete``; per repo (``/api/{models,datasets,spaces}/<ns>/<name>``): info (``[/revision/<rev>]``),
``preupload/<rev>``, ``commit/<rev>`` (ndjson: header, file, lfsFile, deletedFile, deletedFolder),
``tree/<rev>[/<path>]``, ``paths-info/<rev>``, ``refs``, ``branch/<name>`` (create, delete), ``tag/<rev>``,
``commits/<rev>``; LFS ``/<prefix><repo>.git/info/lfs/objects/batch`` with uploads to ``/lfs-upload/<oid>``; downloads
``/<prefix><repo>/resolve/<rev>/<path>`` (GET/HEAD, ranges). Simplified: no xet, no pull requests, no gating, one
write token per user, no pagination.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["LocalHubServer"]

_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_REPO = r"(?P<ns>[^/]+)/(?P<name>[^/]+?)"
_API = re.compile(rf"^/api/(?P<types>models|datasets|spaces)/{_REPO}(?:/(?P<action>[a-z-]+)(?:/(?P<rest>.*))?)?$")
_LFS = re.compile(rf"^/(?P<prefix>datasets/|spaces/)?{_REPO}\.git/info/lfs/objects/batch$")
_RESOLVE = re.compile(rf"^/(?P<prefix>datasets/|spaces/)?{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".parquet", ".arrow", ".png", ".jpg", ".jpeg", ".zip", ".gz")


class HubError(Exception):
    """An HTTP error answer: status, hub error code (X-Error-Code) and message."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class _Store:
    """Repos, commits, refs (memory) and blobs (disk, by sha256)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        self.repos: dict[tuple[str, str], dict] = {}
        self.lock = threading.RLock()

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256

    def put_blob(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        path = self.blob_path(sha)
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return sha

    def repo(self, repo_type: str, repo_id: str) -> dict:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository Not Found: {repo_type} {repo_id}.", "RepoNotFound")
        return repo

    def resolve(self, repo: dict, revision: str) -> str:
        revision = unquote(revision)
        if revision in repo["branches"]:
            return repo["branches"][revision]
        if revision in repo["tags"]:
            return repo["tags"][revision]
        if revision in repo["commits"]:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def new_commit(self, repo: dict, parent: str | None, files: dict, message: str) -> str:
        digest = hashlib.sha1(json.dumps([parent, sorted(files.items()), message, time.time_ns()]).encode())
        oid = digest.hexdigest()
        repo["commits"][oid] = {"parent": parent, "files": files, "message": message, "date": time.time()}
        return oid


class _Handler(BaseHTTPRequestHandler):
    server_version = "mmquant-local-hub/1.0"
    protocol_version = "HTTP/1.1"

    @property
    def hub(self) -> LocalHubServer:
        return self.server.hub  # type: ignore[attr-defined]

    def log_message(self, fmt, *args):  # quiet unless asked
        if self.hub.verbose:
            super().log_message(fmt, *args)

    # ------------------------------------------------------------------ plumbing
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, value, status: int = 200, headers: dict | None = None):
        self._send(status, json.dumps(value).encode(), headers)

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        return self.hub.tokens.get(token) if token else None

    def _require_user(self) -> str:
        user = self._user()
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header: a write token is required.")
        return user

    def _dispatch(self):
        try:
            self.route()
        except HubError as e:
            headers = {"X-Error-Message": " ".join(e.message.split())[:300]}
            if e.code:
                headers["X-Error-Code"] = e.code
            self._json({"error": e.message, **e.extra}, e.status, headers)
        except Exception as e:  # never let a handler bug kill the server
            self._json({"error": f"{type(e).__name__}: {e}"}, 500, {"X-Error-Message": " ".join(str(e).split())[:300]})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _dispatch

    # ------------------------------------------------------------------ routing
    def route(self):
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        method = self.command
        with self.hub.store.lock:
            if path == "/api/whoami-v2":
                return self.whoami()
            if path == "/api/agent-harnesses":
                return self._json({"standardEnvVars": [], "harnesses": {}})
            if path == "/api/validate-yaml" and method == "POST":
                return self.validate_yaml()
            if path == "/api/repos/create" and method == "POST":
                return self.create_repo()
            if path == "/api/repos/delete" and method == "DELETE":
                return self.delete_repo()
            if path.startswith("/lfs-upload/") and method == "PUT":
                return self.lfs_upload(path.rsplit("/", 1)[1])
            if m := _LFS.match(path):
                return self.lfs_batch(_PREFIX_TYPE[m["prefix"] or ""], f"{m['ns']}/{m['name']}")
            if m := _RESOLVE.match(path):
                repo_type = _PREFIX_TYPE[m["prefix"] or ""]
                return self.resolve(repo_type, f"{m['ns']}/{m['name']}", m["rev"], unquote(m["path"]))
            if m := _API.match(path):
                return self.repo_api(_TYPES[m["types"]], f"{m['ns']}/{m['name']}", m["action"], m["rest"], query)
        raise HubError(404, f"local hub: no route for {method} {path}")

    def repo_api(self, repo_type: str, repo_id: str, action: str | None, rest: str | None, query: dict):
        store, method = self.hub.store, self.command
        repo = store.repo(repo_type, repo_id)
        if repo["private"] and self._user() != repo["owner"]:
            raise HubError(404, f"Repository Not Found: {repo_id} (private).", "RepoNotFound")
        if action is None or action == "revision":
            return self.repo_info(repo_type, repo_id, repo, rest or "main")
        if action == "preupload":
            return self.preupload()
        if action == "commit" and method == "POST":
            return self.commit(repo_type, repo_id, repo, rest or "main", query)
        if action == "tree":
            revision, _, sub = (rest or "main").partition("/")
            return self.tree(repo, revision, unquote(sub), query)
        if action == "paths-info" and method == "POST":
            return self.paths_info(repo, rest or "main")
        if action == "refs":
            return self.refs(repo)
        if action == "branch":
            return self.branch(repo, unquote(rest or ""))
        if action == "tag" and method == "POST":
            return self.tag(repo, rest or "main")
        if action == "commits":
            return self.commits(repo, rest or "main")
        raise HubError(404, f"local hub: no route for {method} {self.path}")

    # ------------------------------------------------------------------ account and repos
    def whoami(self):
        user = self._require_user()
        self._json(
            {
                "type": "user",
                "id": user,
                "name": user,
                "fullname": user,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
            }
        )

    def validate_yaml(self):
        import yaml

        content = json.loads(self._body() or b"{}").get("content", "")
        if m := re.match(r"^\s*---\s*\n(.*?)\n---\s*(\n|$)", content, re.DOTALL):  # a card: its front matter
            content = m[1]
        try:
            yaml.safe_load(content)
        except yaml.YAMLError as e:
            raise HubError(400, f"Invalid YAML metadata: {e}") from None
        self._json({"errors": [], "warnings": []})

    def create_repo(self):
        user = self._require_user()
        body = json.loads(self._body() or b"{}")
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or user}/{body['name']}"
        store = self.hub.store
        url = f"{self.hub.endpoint}/{_PREFIX[repo_type]}{repo_id}"
        if (repo_type, repo_id) in store.repos:
            raise HubError(409, f"You already created this {repo_type} repo: {repo_id}", url=url)
        repo = {"private": bool(body.get("private")), "owner": user, "commits": {}, "branches": {}, "tags": {}}
        repo["branches"]["main"] = store.new_commit(repo, None, {}, "initial commit")
        store.repos[(repo_type, repo_id)] = repo
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def delete_repo(self):
        self._require_user()
        body = json.loads(self._body() or b"{}")
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or self._user()}/{body['name']}"
        self.hub.store.repo(repo_type, repo_id)
        del self.hub.store.repos[(repo_type, repo_id)]
        self._json({})

    def repo_info(self, repo_type: str, repo_id: str, repo: dict, revision: str):
        oid = self.hub.store.resolve(repo, revision)
        files = repo["commits"][oid]["files"]
        siblings = [
            {"rfilename": path, "size": f["size"], "blobId": f["git_oid"]}
            | ({"lfs": {"sha256": f["sha256"], "size": f["size"], "pointerSize": 134}} if f["lfs"] else {})
            for path, f in sorted(files.items())
        ]
        info = {
            "id": repo_id,
            "_id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": oid,
            "private": repo["private"],
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(repo["commits"][oid]["date"])),
            "createdAt": "2026-01-01T00:00:00.000Z",
        }
        if repo_type == "space":
            info |= {"sdk": "gradio", "runtime": {"stage": "STOPPED"}}
        self._json(info)

    # ------------------------------------------------------------------ uploads
    def preupload(self):
        self._require_user()
        body = json.loads(self._body() or b"{}")
        files = []
        for f in body.get("files", []):
            sample = base64.b64decode(f.get("sample", ""))
            binary = b"\0" in sample or f["path"].endswith(_LFS_SUFFIXES)
            lfs = binary or f.get("size", 0) > 10 * 1024 * 1024
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False})
        self._json({"files": files, "commitOid": None})

    def lfs_batch(self, repo_type: str, repo_id: str):
        self._require_user()
        self.hub.store.repo(repo_type, repo_id)
        body = json.loads(self._body() or b"{}")
        objects = []
        for obj in body.get("objects", []):
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if not self.hub.store.blob_path(obj["oid"]).exists():
                entry["actions"] = {"upload": {"href": f"{self.hub.endpoint}/lfs-upload/{obj['oid']}"}}
            objects.append(entry)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            content_type="application/vnd.git-lfs+json",
        )

    def lfs_upload(self, oid: str):
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, f"LFS upload: content does not match oid {oid}.")
        self.hub.store.put_blob(data)
        self._send(200, b"")

    def commit(self, repo_type: str, repo_id: str, repo: dict, revision: str, query: dict):
        self._require_user()
        if query.get("create_pr"):
            raise HubError(400, "local hub: pull requests are not supported; commit to a branch instead.")
        store = self.hub.store
        branch = unquote(revision)
        if branch not in repo["branches"]:
            raise HubError(404, f"Invalid rev id: {branch} (commits go to a branch).", "RevisionNotFound")
        head = repo["branches"][branch]
        files = dict(repo["commits"][head]["files"])
        message = ""
        for line in self._body().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                message = value.get("summary", "")
                parent = value.get("parentCommit")
                if parent and parent != head:
                    raise HubError(412, f"parentCommit {parent} is not the head {head} of {branch}.")
            elif key == "file":
                data = base64.b64decode(value["content"])
                sha = store.put_blob(data)
                files[value["path"]] = {"sha256": sha, "size": len(data), "git_oid": _git_oid(data), "lfs": False}
            elif key == "lfsFile":
                path = store.blob_path(value["oid"])
                if not path.exists():
                    raise HubError(422, f"LFS object {value['oid']} of {value['path']} was never uploaded.")
                size = path.stat().st_size
                files[value["path"]] = {"sha256": value["oid"], "size": size, "git_oid": value["oid"], "lfs": True}
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, f"deletedFile: {value['path']} does not exist.", "EntryNotFound")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                for path in [p for p in files if p.startswith(prefix)]:
                    del files[path]
            else:
                raise HubError(400, f"local hub: unsupported commit operation {key!r}.")
        oid = store.new_commit(repo, head, files, message)
        repo["branches"][branch] = oid
        url = f"{self.hub.endpoint}/{_PREFIX[repo_type]}{repo_id}/commit/{oid}"
        self._json({"commitUrl": url, "commitOid": oid, "commitMessage": message})

    # ------------------------------------------------------------------ listing
    def _entry(self, path: str, f: dict) -> dict:
        entry = {"type": "file", "oid": f["git_oid"], "size": f["size"], "path": path}
        if f["lfs"]:
            entry["lfs"] = {"oid": f["sha256"], "size": f["size"], "pointerSize": 134}
        return entry

    def _listing(self, files: dict, base: str, recursive: bool) -> list[dict]:
        prefix = base.strip("/") + "/" if base.strip("/") else ""
        out, folders = [], set()
        for path in sorted(files):
            if not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            parts = rest.split("/")
            for depth in range(1, len(parts)):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                out.append(self._entry(path, files[path]))
        out += [{"type": "directory", "oid": _git_oid(f.encode()), "path": f} for f in sorted(folders)]
        return out

    def tree(self, repo: dict, revision: str, sub: str, query: dict):
        files = repo["commits"][self.hub.store.resolve(repo, revision)]["files"]
        sub = sub.strip("/")
        if sub and sub not in files and not any(p.startswith(sub + "/") for p in files):
            raise HubError(404, f"Entry not found: {sub}", "EntryNotFound")
        recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
        self._json(self._listing(files, sub, recursive))

    def paths_info(self, repo: dict, revision: str):
        files = repo["commits"][self.hub.store.resolve(repo, revision)]["files"]
        form = parse_qs(self._body().decode())
        out = []
        for path in form.get("paths", []):
            path = path.strip("/")
            if path in files:
                out.append(self._entry(path, files[path]))
            elif any(p.startswith(path + "/") for p in files):
                out.append({"type": "directory", "oid": _git_oid(path.encode()), "path": path})
        self._json(out)

    def refs(self, repo: dict):
        ref = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": o} for n, o in repo["branches"].items()]
        tags = [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": o} for n, o in repo["tags"].items()]
        self._json({"branches": ref, "tags": tags, "converts": []})

    def branch(self, repo: dict, name: str):
        self._require_user()
        if self.command == "DELETE":
            if name not in repo["branches"] or name == "main":
                raise HubError(404, f"Branch {name} cannot be deleted.", "RevisionNotFound")
            del repo["branches"][name]
            return self._json({})
        if name in repo["branches"]:
            raise HubError(409, f"Reference already exists: {name}")
        body = json.loads(self._body() or b"{}")
        repo["branches"][name] = self.hub.store.resolve(repo, body.get("startingPoint") or "main")
        self._json({})

    def tag(self, repo: dict, revision: str):
        self._require_user()
        body = json.loads(self._body() or b"{}")
        if body["tag"] in repo["tags"]:
            raise HubError(409, f"Tag already exists: {body['tag']}")
        repo["tags"][body["tag"]] = self.hub.store.resolve(repo, revision)
        self._json({})

    def commits(self, repo: dict, revision: str):
        oid, out = self.hub.store.resolve(repo, revision), []
        while oid is not None:
            commit = repo["commits"][oid]
            date = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(commit["date"]))
            out.append({"id": oid, "title": commit["message"], "message": "", "authors": [], "date": date})
            oid = commit["parent"]
        self._json(out)

    # ------------------------------------------------------------------ downloads
    def resolve(self, repo_type: str, repo_id: str, revision: str, path: str):
        store = self.hub.store
        repo = store.repo(repo_type, repo_id)
        if repo["private"] and self._user() != repo["owner"]:
            raise HubError(404, f"Repository Not Found: {repo_id} (private).", "RepoNotFound")
        oid = store.resolve(repo, revision)
        f = repo["commits"][oid]["files"].get(path)
        if f is None:
            raise HubError(404, f"Entry not found: {path} at {revision}", "EntryNotFound")
        data = store.blob_path(f["sha256"]).read_bytes()
        headers = {"X-Repo-Commit": oid, "ETag": f'"{f["git_oid"]}"', "Accept-Ranges": "bytes"}
        if f["lfs"]:
            headers |= {"X-Linked-Etag": f'"{f["sha256"]}"', "X-Linked-Size": str(f["size"])}
        status = 200
        if (rng := self.headers.get("Range")) and (m := re.match(r"bytes=(\d*)-(\d*)$", rng)):
            start = int(m[1]) if m[1] else max(0, len(data) - int(m[2]))
            end = int(m[2]) if m[1] and m[2] else len(data) - 1
            headers["Content-Range"] = f"bytes {start}-{min(end, len(data) - 1)}/{len(data)}"
            data, status = data[start : end + 1], 206
        self._send(status, data, headers, content_type="application/octet-stream")


_PREFIX_TYPE = {"": "model", "datasets/": "dataset", "spaces/": "space"}


class LocalHubServer:
    """The server: ``start()``/``stop()`` or a context manager; ``endpoint`` is its base URL."""

    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 0, tokens=None, verbose=False):
        self.store = _Store(Path(root))
        self.tokens = dict(tokens or {"hf_test_token": "tester"})
        self.verbose = verbose
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.hub = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> LocalHubServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="local-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> LocalHubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="folder for the blobs")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--token", default="hf_test_token", help="the write token (user 'tester')")
    args = parser.parse_args(argv)
    server = LocalHubServer(args.root, port=args.port, tokens={args.token: "tester"}, verbose=True)
    print(f"local hub at {server.endpoint} (token {args.token}); Ctrl-C stops it", flush=True)
    try:
        server._httpd.serve_forever()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
