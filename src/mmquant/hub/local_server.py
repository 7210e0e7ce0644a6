"""A small Hugging Face Hub-compatible HTTP server, for tests and offline demos.

No pip package gives an upload-capable local hub, so this one speaks just enough of the Hub's HTTP API for the real
clients (``huggingface_hub``, ``transformers``, ``diffusers``, ``datasets``, ``evaluate``) to upload, list and
download over HTTP when ``HF_ENDPOINT`` points at it and ``HF_HUB_DISABLE_XET=1``. Standard library only (``yaml``
is imported lazily to validate card metadata). File contents are stored for real, content-addressed on disk
(``<root>/blobs/<sha256>``); repositories, commits and refs are kept in memory and mirrored to
``<root>/repos.json`` after every change, so a server restarted on the same root serves the same repositories.

    with LocalHubServer(tmp_path) as hub:                 # http://127.0.0.1:<free port>, token hf_test_token
        api = HfApi(endpoint=hub.endpoint, token="hf_test_token")

    python -m mmquant.hub.local_server --root /tmp/hub --port 8123

Endpoints (``{type}`` is ``models``, ``datasets`` or ``spaces``; URL prefixes are ``""``, ``datasets/``, ``spaces/``):

- ``GET /api/whoami-v2`` (401 without a valid token), ``GET /api/agent-harnesses``, ``POST /api/validate-yaml``;
- ``POST /api/repos/create`` (409 when it exists), ``DELETE /api/repos/delete``;
- ``GET /api/{type}/<ns>/<name>[/revision/<rev>]``: repo info with siblings and card data (``RepoNotFound``: 401
  when anonymous, 404 with a token, as on the Hub; 404 ``RevisionNotFound``);
- ``POST /api/{type}/<repo>/preupload/<rev>``: regular or LFS per file (LFS for binary-looking content, the usual
  binary suffixes, or more than 10 MB), with the oid of the file already there so unchanged files are skipped;
- ``POST /api/{type}/<repo>/commit/<rev>``: ndjson ``header`` (``parentCommit`` checked), ``file`` (base64),
  ``lfsFile``, ``deletedFile``, ``deletedFolder``; ``create_pr`` answers 400;
- ``POST /<prefix><repo>.git/info/lfs/objects/batch``: objects already stored get no action, the others an upload
  href (``PUT /lfs-objects/<oid>``, checked against the oid) and a verify href (``POST /lfs-objects/<oid>/verify``);
- ``GET /api/{type}/<repo>/tree/<rev>[/<path>]`` (``recursive``, ``expand`` gives ``lastCommit``),
  ``POST /api/{type}/<repo>/paths-info/<rev>``, ``GET /api/{type}/<repo>/refs``,
  ``POST``/``DELETE /api/{type}/<repo>/branch/<name>`` (``startingPoint``), ``POST /api/{type}/<repo>/tag/<rev>``,
  ``DELETE /api/{type}/<repo>/tag/<name>``, ``GET /api/{type}/<repo>/commits/<rev>``;
- ``GET``/``HEAD /<prefix><repo>/resolve/<rev>/<path>``: the file with ``X-Repo-Commit``, ``ETag``,
  ``X-Linked-Etag``/``X-Linked-Size`` (LFS files), ``Content-Length`` and single byte ranges; 404 ``EntryNotFound``.

Revisions are branch names, tag names or full commit shas. A commit's sha is the sha1 of the repository, its parent
and its contents; every commit stays readable. Writes need a token from ``tokens`` (401 otherwise); reads of public
repos need none, private repos are visible with a valid token only.

Simplified on purpose: no xet storage, no pull requests or discussions, no gated repos, no organizations or
per-namespace permissions (any valid token may write anywhere), no ``.gitattributes``/``.gitignore`` rules, no
pagination, no LFS multipart uploads, no redirects to a CDN (LFS files are served directly), no Spaces runtime; a
new repo starts with an empty commit (no ``.gitattributes``).
Unknown routes answer 404 with the method and path in the message and are recorded in ``LocalHubServer.unhandled``;
a handler exception answers 500 with its message, is recorded in ``LocalHubServer.errors``, and never stops the
server.
"""

from __future__ import annotations

import argparse
import base64
import codecs
import hashlib
import ipaddress
import json
import os
import re
import socket
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "DEFAULT_TOKENS",
    "LFS_SUFFIXES",
    "REGULAR_MAX_SIZE",
    "HubError",
    "LocalHubServer",
    "git_blob_oid",
    "lfs_pointer",
    "is_loopback",
    "main",
]

DEFAULT_TOKENS: Mapping[str, str] = {"hf_test_token": "tester"}
"""The tokens a server accepts unless told otherwise: token -> user name."""

REGULAR_MAX_SIZE = 10 * 1024 * 1024
"""Files larger than this always go through LFS, as on the Hub."""

LFS_SUFFIXES = (
    ".7z", ".arrow", ".bin", ".bz2", ".ckpt", ".ftz", ".gguf", ".gz", ".h5", ".joblib", ".jpeg", ".jpg", ".mlmodel",
    ".model", ".msgpack", ".npy", ".npz", ".onnx", ".ot", ".parquet", ".pb", ".pickle", ".pkl", ".png", ".pt", ".pth",
    ".rar", ".safetensors", ".tar", ".tflite", ".tgz", ".wasm", ".xz", ".zip", ".zst",
)  # fmt: skip
"""Suffixes stored through LFS whatever their content (the Hub's default ``.gitattributes`` rules, roughly)."""

_REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_PREFIX_TYPES = {prefix: repo_type for repo_type, prefix in _URL_PREFIXES.items()}
_SEGMENT = r"[^/]+"
_API_REPO = re.compile(
    rf"^/api/(?P<types>models|datasets|spaces)/(?P<ns>{_SEGMENT})/(?P<name>{_SEGMENT})(?P<rest>/.*)?$"
)
_LFS_BATCH = re.compile(
    rf"^/(?P<prefix>datasets/|spaces/)?(?P<ns>{_SEGMENT})/(?P<name>{_SEGMENT})\.git/info/lfs/objects/batch$"
)
_LFS_OBJECT = re.compile(r"^/lfs-objects/(?P<oid>[0-9a-f]{64})(?P<verify>/verify)?$")
_RESOLVE = re.compile(
    rf"^/(?P<prefix>datasets/|spaces/)?(?P<ns>{_SEGMENT})/(?P<name>{_SEGMENT})/resolve/(?P<rev>{_SEGMENT})/(?P<path>.+)$"
)
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_CHUNK = 1024 * 1024
# Every name that becomes part of a path or a key is checked against one of these before it is used.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?")  # a user, organisation or repo name
_SHA256 = re.compile(r"[0-9a-f]{64}")  # an LFS oid, i.e. a blob's file name
_MAX_PATH = 1024


class HubError(Exception):
    """An error answer: HTTP status, message, and the Hub's ``X-Error-Code`` when the client needs one."""

    def __init__(self, status: int, message: str, code: str | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what the Hub calls a regular file's ``oid``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file committed in place of an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _check_name(value: Any, what: str) -> str:
    """``value`` as a user, organisation or repository name (letters, digits, ``._-``, no ``..``); 400 otherwise."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise HubError(400, f"Invalid {what}: {value!r} (letters, digits and ._- only, at most 96 characters).")
    return value


def _check_repo_id(repo_id: str) -> str:
    """``<namespace>/<name>``, both checked by :func:`_check_name`; 400 otherwise."""
    ns, sep, name = repo_id.partition("/")
    if not sep:
        raise HubError(400, f"Invalid repo id: {repo_id!r} (expected namespace/name).")
    _check_name(ns, f"namespace in repo id {repo_id!r}")
    _check_name(name, f"name in repo id {repo_id!r}")
    return repo_id


def _check_oid(value: Any) -> str:
    """A sha256 LFS oid: exactly 64 lowercase hex characters; 400 otherwise (it becomes a blob's file name)."""
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise HubError(400, f"Invalid sha256 oid: {value!r} (expected 64 lowercase hex characters).")
    return value


def _check_file_path(value: Any) -> str:
    """A relative file path inside a repository: every ``/``-separated part a single name
    (:func:`mmquant.safe_paths.check_path_component`: no ``\\``, control characters, ``.`` or ``..``, none empty);
    400 otherwise."""
    from mmquant.safe_paths import check_path_component

    try:
        if not isinstance(value, str) or len(value) > _MAX_PATH:
            raise ValueError(value)
        for segment in value.split("/"):
            check_path_component(segment, "path")
    except (TypeError, ValueError):
        raise HubError(
            400, f"Invalid file path: {value!r} (a relative path; no '..', '.', empty or '\\' parts)."
        ) from None
    return value


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``127.0.0.0/8``, ``::1`` or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _looks_binary(sample: bytes) -> bool:
    """True when the first bytes of a file are not UTF-8 text (a NUL byte, or an invalid sequence)."""
    if b"\0" in sample:
        return True
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)  # a cut multi-byte character is fine
    except UnicodeDecodeError:
        return True
    return False


def _header_value(text: str) -> str:
    """``text`` on one line and in ASCII, fit for an HTTP header."""
    return " ".join(text.split()).encode("ascii", "backslashreplace").decode()[:2000]


def _iso(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(timestamp))


_YAML_BLOCK = re.compile(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")  # as huggingface_hub's repocard


def _front_matter(text: str) -> str | None:
    """The YAML block between the leading ``---`` lines of a card, or None."""
    match = _YAML_BLOCK.search(text)
    return match[2] if match else None


_STRING_FIELDS = ("library_name", "pipeline_tag", "pretty_name")
_STRING_LIST_FIELDS = ("tags", "language", "license", "datasets", "metrics", "base_model")


def _metadata_error(data: Any) -> str | None:
    """The Hub's basic checks on card metadata: a mapping, with string (list) fields where it expects them."""
    if data is None:
        return None
    if not isinstance(data, dict):
        return f"Invalid YAML metadata: expected a mapping, got {type(data).__name__}"
    for key in _STRING_FIELDS:
        if key in data and not isinstance(data[key], str):
            return f'Invalid YAML metadata: "{key}" must be a string'
    for key in _STRING_LIST_FIELDS:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return f'Invalid YAML metadata: "{key}" must be a string or a list of strings'
    return None


class _Store:
    """Blobs on disk (by sha256) and repositories in memory, mirrored to ``repos.json``; one lock for the state.

    A repository is a JSON-able dict: ``type``, ``id``, ``private``, ``owner``, ``created``, ``branches`` and
    ``tags`` (name -> commit sha), ``commits`` (sha -> ``parent``, ``title``, ``message``, ``author``, ``date``,
    ``files``). ``files`` maps a path to ``sha256``, ``size``, ``lfs``, ``oid`` (git blob id of the content or of
    the LFS pointer) and ``commit`` (the commit that last changed it). Blobs never change once written, so they are
    read outside the lock.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.blobs = self.root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.state_file = self.root / "repos.json"
        self.lock = threading.RLock()
        self.repos: dict[str, dict] = {}
        self.pending_uploads: dict[str, int] = {}  # LFS oid -> size announced in a batch request
        if self.state_file.exists():
            self.repos = json.loads(self.state_file.read_text())

    # ------------------------------------------------------------------ blobs
    def blob_path(self, sha256: str) -> Path:
        """``<root>/blobs/<sha256>``; the name is checked (64 hex) and the result confined to the blob folder."""
        path = self.blobs / _check_oid(sha256)
        if path.resolve().parent != self.blobs.resolve():
            raise HubError(400, f"Invalid sha256 oid: {sha256!r} (resolves outside the blob store).")
        return path

    def has_blob(self, sha256: str) -> bool:
        return self.blob_path(sha256).is_file()

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; returns its sha256."""
        return self.put_stream(iter([data]))[0]

    def put_stream(self, chunks: Iterator[bytes], expected_sha256: str | None = None) -> tuple[str, int]:
        """Store the concatenated chunks (hashed while written, renamed into place atomically): (sha256, size).
        With ``expected_sha256``, content with another hash is discarded and answered 400."""
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=self.blobs, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    f.write(chunk)
            sha = digest.hexdigest()
            if expected_sha256 is not None and sha != expected_sha256:
                raise HubError(
                    400, f"Upload rejected: its sha256 is {sha} ({size} bytes), expected {expected_sha256}."
                )
            if self.has_blob(sha):
                os.unlink(tmp)
            else:
                os.replace(tmp, self.blob_path(sha))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return sha, size

    # ------------------------------------------------------------------ repositories
    @staticmethod
    def key(repo_type: str, repo_id: str) -> str:
        return f"{repo_type}/{repo_id}"

    def save(self) -> None:
        tmp = self.state_file.with_name(".repos.json.tmp")
        tmp.write_text(json.dumps(self.repos))
        os.replace(tmp, self.state_file)

    def get(self, repo_type: str, repo_id: str, user: str | None) -> dict:
        """The repository, or ``RepoNotFound`` (also for a private repo without a valid token)."""
        repo = self.repos.get(self.key(repo_type, repo_id))
        if repo is None or (repo["private"] and user is None):
            status = 404 if user else 401  # as on the Hub: 401 when the caller is anonymous
            raise HubError(status, f"Repository Not Found for {repo_type} {repo_id!r}.", "RepoNotFound")
        return repo

    def create(self, repo_type: str, repo_id: str, private: bool, owner: str, sdk: str | None = None) -> dict:
        repo = {
            "type": repo_type,
            "sdk": sdk,
            "id": repo_id,
            "private": private,
            "owner": owner,
            "created": time.time(),
            "branches": {},
            "tags": {},
            "commits": {},
        }
        repo["branches"]["main"] = self.add_commit(repo, None, {}, "initial commit", "", owner)
        self.repos[self.key(repo_type, repo_id)] = repo
        return repo

    def resolve(self, repo: dict, revision: str) -> str:
        """A branch, a tag or a full commit sha -> commit sha; 404 ``RevisionNotFound`` otherwise."""
        if revision in repo["branches"]:
            return repo["branches"][revision]
        if revision in repo["tags"]:
            return repo["tags"][revision]
        if _SHA1.match(revision) and revision in repo["commits"]:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def files(self, repo: dict, revision: str) -> tuple[str, dict[str, dict]]:
        sha = self.resolve(repo, revision)
        return sha, repo["commits"][sha]["files"]

    def add_commit(self, repo: dict, parent: str | None, files: dict, title: str, message: str, author: str) -> str:
        """Record a commit; its sha is the sha1 of the repository, the parent, the contents and the message."""
        content = json.dumps([repo["type"], repo["id"], parent, sorted(files.items()), title, message])
        sha = hashlib.sha1(content.encode()).hexdigest()
        for entry in files.values():
            entry.setdefault("commit", sha)
        repo["commits"][sha] = {
            "parent": parent,
            "title": title,
            "message": message,
            "author": author,
            "date": time.time(),
            "files": files,
        }
        return sha


class _Handler(BaseHTTPRequestHandler):
    """One request: routing, then one method per endpoint group. Errors become JSON answers, never crashes."""

    server_version = "mmquant-local-hub/1.0"
    protocol_version = "HTTP/1.1"  # keep-alive: every answer has a Content-Length, every request body is drained

    # ------------------------------------------------------------------ plumbing
    @property
    def hub(self) -> LocalHubServer:
        return self.server.hub  # type: ignore[attr-defined]

    @property
    def store(self) -> _Store:
        return self.hub.store

    def log_message(self, format: str, *args: Any) -> None:
        if self.hub.verbose:
            super().log_message(format, *args)

    def _body_chunks(self) -> Iterator[bytes]:
        """The request body, read once, with or without ``Transfer-Encoding: chunked``."""
        self._body_read = True
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return
                yield self.rfile.read(size)
                self.rfile.readline()  # the CRLF after each chunk
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(_CHUNK, remaining))
            if not chunk:
                raise ConnectionError("request body ended early")
            remaining -= len(chunk)
            yield chunk

    def _body(self) -> bytes:
        if self._body_cache is None:
            self._body_cache = b"" if self._body_read else b"".join(self._body_chunks())
        return self._body_cache

    def _json_body(self) -> dict:
        body = self._body()
        try:
            value = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError as e:
            raise HubError(400, f"Invalid JSON body: {e}") from None
        if not isinstance(value, dict):
            raise HubError(400, f"Invalid JSON body: expected an object, got {type(value).__name__}")
        return value

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        content_type: str = "application/json",
        length: int | None = None,
    ) -> None:
        """Send status and headers, then ``body`` unless this is a HEAD request."""
        self._responded = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        self._send(status, json.dumps(value).encode(), headers)

    def _send_error(self, error: HubError) -> None:
        message = " ".join(error.message.split())
        headers = {"X-Error-Message": _header_value(message)}
        if error.code:
            headers["X-Error-Code"] = error.code
        self._json({"error": message, **error.extra}, error.status, headers)

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth[:7].lower() == "bearer " else None

    def _user(self) -> str | None:
        """The user of a valid token, or None (no token or an unknown one)."""
        token = self._token()
        return self.hub.tokens.get(token) if token else None

    def _require_user(self) -> str:
        """The user of a valid token; 401 without one (writes and whoami)."""
        token = self._token()
        if token is None:
            raise HubError(
                401, "Invalid credentials in Authorization header: no token sent, this needs a write token."
            )
        user = self.hub.tokens.get(token)
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return user

    def _dispatch(self) -> None:
        self._body_read, self._body_cache, self._responded = False, None, False
        try:
            self.route()
        except (ConnectionError, TimeoutError):  # the client went away
            self.close_connection = True
            return
        except Exception as e:
            if not isinstance(e, HubError):  # a handler bug answers 500 and the server keeps serving
                self.hub.errors.append(f"{self.command} {self.path}\n{traceback.format_exc()}")
                if self.hub.verbose:
                    self.log_error("%s", self.hub.errors[-1])
                e = HubError(500, f"local hub: {type(e).__name__}: {e}")
            if self._responded:  # too late for an error answer: drop the connection instead
                self.close_connection = True
                return
            self._send_error(e)
        if not self._body_read:  # leave the keep-alive connection clean for the next request
            for _ in self._body_chunks():
                pass

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    # ------------------------------------------------------------------ routing
    def route(self) -> None:
        url = urlsplit(self.path)
        path, query, method = url.path, parse_qs(url.query), self.command
        fixed = {
            ("GET", "/api/whoami-v2"): self.whoami,
            ("GET", "/api/agent-harnesses"): self.agent_harnesses,
            ("POST", "/api/validate-yaml"): self.validate_yaml,
            ("POST", "/api/repos/create"): self.create_repo,
            ("DELETE", "/api/repos/delete"): self.delete_repo,
        }
        if (method, path) in fixed:
            return fixed[(method, path)]()
        for pattern in (_RESOLVE, _LFS_BATCH, _API_REPO):  # every repo id in a URL is checked before use
            if m := pattern.match(path):
                _check_repo_id(f"{unquote(m['ns'])}/{unquote(m['name'])}")
                break
        if m := _RESOLVE.match(path):
            if method in ("GET", "HEAD"):
                repo_type = _PREFIX_TYPES[m["prefix"] or ""]
                return self.resolve(repo_type, f"{unquote(m['ns'])}/{unquote(m['name'])}", m["rev"], m["path"])
        elif m := _LFS_BATCH.match(path):
            if method == "POST":
                return self.lfs_batch(_PREFIX_TYPES[m["prefix"] or ""], f"{unquote(m['ns'])}/{unquote(m['name'])}")
        elif m := _LFS_OBJECT.match(path):
            if method == "PUT" and not m["verify"]:
                return self.lfs_upload(m["oid"])
            if method == "POST" and m["verify"]:
                return self.lfs_verify(m["oid"])
        elif m := _API_REPO.match(path):
            repo_id = f"{unquote(m['ns'])}/{unquote(m['name'])}"
            if self.repo_api(_REPO_TYPES[m["types"]], repo_id, (m["rest"] or "").lstrip("/"), query):
                return None
        self.hub.unhandled.append(f"{method} {path}")
        hint = " (xet storage is not supported: set HF_HUB_DISABLE_XET=1)" if "/xet-" in path else ""
        raise HubError(404, f"local hub: no route for {method} {path}{hint}")

    def repo_api(self, repo_type: str, repo_id: str, rest: str, query: dict[str, list[str]]) -> bool:
        """Route ``/api/{type}/<repo>/...``; False when nothing matches (the caller answers 404)."""
        action, _, arg = rest.partition("/")
        method = self.command
        routes = {
            ("GET", ""): lambda: self.repo_info(repo_type, repo_id, "main"),
            ("GET", "revision"): lambda: self.repo_info(repo_type, repo_id, unquote(arg)),
            ("POST", "preupload"): lambda: self.preupload(repo_type, repo_id, unquote(arg)),
            ("POST", "commit"): lambda: self.commit(repo_type, repo_id, unquote(arg), query),
            ("GET", "tree"): lambda: self.tree(repo_type, repo_id, arg, query),
            ("POST", "paths-info"): lambda: self.paths_info(repo_type, repo_id, unquote(arg)),
            ("GET", "refs"): lambda: self.refs(repo_type, repo_id),
            ("POST", "branch"): lambda: self.create_branch(repo_type, repo_id, unquote(arg)),
            ("DELETE", "branch"): lambda: self.delete_branch(repo_type, repo_id, unquote(arg)),
            ("POST", "tag"): lambda: self.create_tag(repo_type, repo_id, unquote(arg)),
            ("DELETE", "tag"): lambda: self.delete_tag(repo_type, repo_id, unquote(arg)),
            ("GET", "commits"): lambda: self.commits(repo_type, repo_id, unquote(arg)),
        }
        handler = routes.get((method, action))
        if handler is None or (action in ("revision", "preupload", "commit", "tree", "paths-info") and not arg):
            return False
        handler()
        return True

    # ------------------------------------------------------------------ account and validation
    def whoami(self) -> None:
        user = self._require_user()
        access = {"displayName": "local-hub", "role": "write", "createdAt": _iso(0)}
        self._json(
            {
                "type": "user",
                "id": user,
                "name": user,
                "fullname": user,
                "email": f"{user}@localhost",
                "emailVerified": True,
                "isPro": False,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": access},
            }
        )

    def agent_harnesses(self) -> None:
        self._json({"standardEnvVars": [], "harnesses": {}})

    def validate_yaml(self) -> None:
        """Check a card's YAML front matter: it must parse, be a mapping, and have string (list) fields where the
        Hub expects them; 400 with the message otherwise (plain text when asked, as ``ModelCard.validate`` does)."""
        content = self._json_body().get("content") or ""
        error = None
        metadata = _front_matter(content)
        if metadata is not None:
            import yaml  # a dependency of the package; imported here to keep the server importable without it

            try:
                data = yaml.safe_load(metadata)
            except yaml.YAMLError as e:
                error = f"Invalid YAML metadata: {' '.join(str(e).split())}"
            else:
                error = _metadata_error(data)
        if error is None:
            return self._json({"errors": [], "warnings": []})
        if "text/plain" in self.headers.get("Accept", ""):
            return self._send(
                400, error.encode(), {"X-Error-Message": _header_value(error)}, content_type="text/plain"
            )
        self._json({"errors": [{"message": error}], "warnings": []}, 400)

    # ------------------------------------------------------------------ repositories
    def create_repo(self) -> None:
        user = self._require_user()
        body = self._json_body()
        repo_type = body.get("type") or "model"
        if repo_type not in _URL_PREFIXES:
            raise HubError(400, f"Invalid repo type: {repo_type!r}.")
        name = _check_name(body.get("name") or "", "repo name")
        repo_id = f"{_check_name(body.get('organization') or user, 'organization')}/{name}"
        url = f"{self.hub.endpoint}/{_URL_PREFIXES[repo_type]}{repo_id}"
        private = bool(body.get("private")) or body.get("visibility") in ("private", "protected")
        with self.store.lock:
            if self.store.key(repo_type, repo_id) in self.store.repos:
                raise HubError(409, f"You already created this {repo_type} repo: {repo_id}", url=url)
            self.store.create(repo_type, repo_id, private, user, body.get("sdk"))
            self.store.save()
        self._json({"url": url, "name": repo_id, "id": repo_id})

    def delete_repo(self) -> None:
        user = self._require_user()
        body = self._json_body()
        repo_type = body.get("type") or "model"
        namespace = _check_name(body.get("organization") or user, "organization")
        repo_id = f"{namespace}/{_check_name(body.get('name'), 'repo name')}"
        with self.store.lock:
            self.store.get(repo_type, repo_id, user)
            del self.store.repos[self.store.key(repo_type, repo_id)]
            self.store.save()
        self._json({})

    def repo_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        with self.store.lock:
            repo = self.store.get(repo_type, repo_id, self._user())
            sha, files = self.store.files(repo, revision)
            commit = repo["commits"][sha]
            private, created, sdk = repo["private"], repo["created"], repo.get("sdk")
        siblings = []
        for path, f in sorted(files.items()):
            sibling = {"rfilename": path, "size": f["size"], "blobId": f["oid"]}
            if f["lfs"]:
                sibling["lfs"] = {"sha256": f["sha256"], "size": f["size"], "pointerSize": f["pointer_size"]}
            siblings.append(sibling)
        info: dict[str, Any] = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0],
            "sha": sha,
            "private": private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "createdAt": _iso(created),
            "lastModified": _iso(commit["date"]),
        }
        info.update(self._card_fields(repo_type, files))
        if repo_type == "space":
            info.setdefault("sdk", sdk or "static")
            info["runtime"] = {"stage": "NO_APP_FILE", "hardware": {"current": None, "requested": None}}
        self._json(info)

    def _card_fields(self, repo_type: str, files: dict[str, dict]) -> dict[str, Any]:
        """What the Hub derives from README.md metadata and config.json (best effort, small files only)."""
        fields: dict[str, Any] = {}
        readme = files.get("README.md")
        if readme and readme["size"] < 1024 * 1024:
            metadata = _front_matter(self.store.blob_path(readme["sha256"]).read_text(errors="replace"))
            try:
                import yaml

                card = yaml.safe_load(metadata) if metadata else None
            except Exception:  # invalid metadata is reported by validate-yaml, not here
                card = None
            if isinstance(card, dict):
                fields["cardData"] = card
                tags = card.get("tags")
                fields["tags"] = [tags] if isinstance(tags, str) else list(tags or [])
                for key in ("library_name", "pipeline_tag", "sdk"):
                    if isinstance(card.get(key), str):
                        fields[key] = card[key]
        config = files.get("config.json")
        if repo_type == "model" and config and config["size"] < 1024 * 1024:
            try:
                data = json.loads(self.store.blob_path(config["sha256"]).read_bytes())
                fields["config"] = {k: data[k] for k in ("architectures", "model_type") if k in data}
            except (ValueError, TypeError):
                pass
        return fields

    # ------------------------------------------------------------------ uploads
    def preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        """Decide regular or LFS per file, and give the oid of the file already at that path (unchanged = skipped)."""
        user = self._require_user()
        body = self._json_body()
        with self.store.lock:
            repo = self.store.get(repo_type, repo_id, user)
            _, files = self.store.files(repo, revision)
            answers = []
            for entry in body.get("files", []):
                path, size = entry["path"], int(entry.get("size") or 0)
                sample = base64.b64decode(entry.get("sample") or "")
                lfs = size > REGULAR_MAX_SIZE or path.lower().endswith(LFS_SUFFIXES) or _looks_binary(sample)
                existing = files.get(path)
                oid = None if existing is None else existing["sha256"] if existing["lfs"] else existing["oid"]
                answers.append(
                    {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
                )
        self._json({"files": answers})

    def lfs_batch(self, repo_type: str, repo_id: str) -> None:
        """Git LFS batch API: objects already stored need nothing; the others get upload and verify hrefs."""
        user = self._require_user()
        body = self._json_body()
        if body.get("operation", "upload") != "upload":
            raise HubError(400, "local hub: only LFS uploads go through the batch API; download with /resolve.")
        with self.store.lock:
            self.store.get(repo_type, repo_id, user)
            objects = []
            for obj in body.get("objects", []):
                oid, size = str(obj.get("oid")), int(obj.get("size") or 0)
                answer: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
                if not re.fullmatch(r"[0-9a-f]{64}", oid):
                    answer["error"] = {"code": 422, "message": f"Invalid sha256 oid: {oid!r}"}
                elif not self.store.has_blob(oid):
                    self.store.pending_uploads[oid] = size
                    href = f"{self.hub.endpoint}/lfs-objects/{oid}"
                    answer["actions"] = {"upload": {"href": href}, "verify": {"href": f"{href}/verify"}}
                objects.append(answer)
        payload = json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode()
        self._send(200, payload, content_type="application/vnd.git-lfs+json")

    def lfs_upload(self, oid: str) -> None:
        """The upload href (stands for the storage bucket: no token, but only oids announced by a batch request)."""
        with self.store.lock:
            expected_size = self.store.pending_uploads.get(oid)
        if expected_size is None and not self.store.has_blob(oid):
            raise HubError(403, f"LFS upload of {oid} was not announced by a batch request.")
        _, size = self.store.put_stream(self._body_chunks(), expected_sha256=oid)
        if expected_size is not None and size != expected_size:
            raise HubError(400, f"LFS upload of {oid}: got {size} bytes, the batch request announced {expected_size}.")
        with self.store.lock:
            self.store.pending_uploads.pop(oid, None)
        self._send(200)

    def lfs_verify(self, oid: str) -> None:
        self._require_user()
        size = self._json_body().get("size")
        path = self.store.blob_path(oid)
        if not path.is_file() or (size is not None and path.stat().st_size != int(size)):
            raise HubError(404, f"LFS object {oid} is missing or has another size.")
        self._json({"oid": oid, "size": path.stat().st_size})

    def commit(self, repo_type: str, repo_id: str, branch: str, query: dict[str, list[str]]) -> None:
        """Apply an ndjson commit to a branch: header, file, lfsFile, deletedFile, deletedFolder."""
        user = self._require_user()
        if query.get("create_pr", ["0"])[0] not in ("", "0", "false"):
            raise HubError(400, "local hub: pull requests are not supported; commit to a branch instead.")
        try:
            lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise HubError(400, f"Invalid ndjson commit payload: {e}") from None
        with self.store.lock:
            repo = self.store.get(repo_type, repo_id, user)
            if branch not in repo["branches"]:
                raise HubError(
                    404, f"Invalid rev id: {branch} (commits go to an existing branch).", "RevisionNotFound"
                )
            head = repo["branches"][branch]
            files = {path: dict(f) for path, f in repo["commits"][head]["files"].items()}  # entries get mutated
            header: dict[str, Any] = {}
            for line in lines:
                key, value = line.get("key"), line.get("value") or {}
                if key == "header":
                    header = value
                    parent = value.get("parentCommit")
                    if parent and parent != head:
                        raise HubError(
                            412, f"A commit has happened since: parentCommit {parent} is not {branch}'s head."
                        )
                elif key == "file":
                    path = _check_file_path(value.get("path"))
                    data = base64.b64decode(value["content"])
                    sha = self.store.put_bytes(data)
                    files[path] = self._file_entry(sha, len(data), lfs=False, data=data)
                elif key == "lfsFile":
                    _check_file_path(value.get("path"))
                    oid = _check_oid(value.get("oid"))
                    if not self.store.has_blob(oid):
                        raise HubError(422, f"LFS object {oid} for {value['path']} was never uploaded.")
                    files[value["path"]] = self._file_entry(oid, self.store.blob_path(oid).stat().st_size, lfs=True)
                elif key == "deletedFile":
                    _check_file_path(value.get("path"))
                    if files.pop(value["path"], None) is None:
                        raise HubError(404, f"A file with this name doesn't exist: {value['path']}", "EntryNotFound")
                elif key == "deletedFolder":
                    folder = value.get("path")
                    _check_file_path(folder.rstrip("/") if isinstance(folder, str) else folder)
                    prefix = value["path"].strip("/") + "/"
                    doomed = [p for p in files if p.startswith(prefix)]
                    if not doomed:
                        raise HubError(404, f"A folder with this name doesn't exist: {value['path']}", "EntryNotFound")
                    for path in doomed:
                        del files[path]
                else:
                    raise HubError(400, f"local hub: unsupported commit operation {key!r}.")
            previous = repo["commits"][head]["files"]
            for path, entry in files.items():  # unchanged files keep the commit that last changed them
                if path in previous and previous[path]["sha256"] == entry["sha256"]:
                    entry["commit"] = previous[path]["commit"]
            title = header.get("summary") or "Upload files"
            sha = self.store.add_commit(repo, head, files, title, header.get("description") or "", user)
            repo["branches"][branch] = sha
            self.store.save()
        url = f"{self.hub.endpoint}/{_URL_PREFIXES[repo_type]}{repo_id}/commit/{sha}"
        self._json({"success": True, "commitUrl": url, "commitOid": sha, "commitMessage": title})

    @staticmethod
    def _file_entry(sha256: str, size: int, lfs: bool, data: bytes = b"") -> dict[str, Any]:
        if lfs:
            pointer = lfs_pointer(sha256, size)
            return {
                "sha256": sha256,
                "size": size,
                "lfs": True,
                "oid": git_blob_oid(pointer),
                "pointer_size": len(pointer),
            }
        return {"sha256": sha256, "size": size, "lfs": False, "oid": git_blob_oid(data)}

    # ------------------------------------------------------------------ listing
    def _entry(self, repo: dict, path: str, files: dict[str, dict], expand: bool) -> dict[str, Any]:
        """A tree / paths-info entry for a file or a folder (``lastCommit`` when expanded)."""
        if path in files:
            f = files[path]
            entry: dict[str, Any] = {"type": "file", "oid": f["oid"], "size": f["size"], "path": path}
            if f["lfs"]:
                entry["lfs"] = {"oid": f["sha256"], "size": f["size"], "pointerSize": f["pointer_size"]}
            last = f["commit"]
        else:
            inside = sorted((p, f) for p, f in files.items() if p.startswith(path + "/"))
            tree_id = hashlib.sha1(json.dumps([(p, f["oid"]) for p, f in inside]).encode()).hexdigest()
            entry = {"type": "directory", "oid": tree_id, "size": 0, "path": path}
            last = max((f["commit"] for _, f in inside), key=lambda sha: repo["commits"][sha]["date"])
        if expand:
            commit = repo["commits"][last]
            entry["lastCommit"] = {"id": last, "title": commit["title"], "date": _iso(commit["date"])}
        return entry

    def tree(self, repo_type: str, repo_id: str, arg: str, query: dict[str, list[str]]) -> None:
        """List a folder (the root by default), one level or recursively."""
        revision, _, folder = arg.partition("/")
        revision, folder = unquote(revision), unquote(folder).strip("/")
        recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
        expand = query.get("expand", ["false"])[0].lower() in ("1", "true")
        with self.store.lock:
            repo = self.store.get(repo_type, repo_id, self._user())
            _, files = self.store.files(repo, revision)
            prefix = f"{folder}/" if folder else ""
            if folder and not any(p.startswith(prefix) for p in files):
                raise HubError(404, f"Entry not found: {folder!r} is not a folder at {revision}.", "EntryNotFound")
            paths: set[str] = set()
            for path in files:
                if not path.startswith(prefix):
                    continue
                parts = path[len(prefix) :].split("/")
                depth = len(parts) if recursive else 1
                paths.update(prefix + "/".join(parts[: i + 1]) for i in range(depth))
            self._json([self._entry(repo, p, files, expand) for p in sorted(paths)])

    def paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        """Info for the given paths (form or JSON body); paths that do not exist are left out, as on the Hub."""
        body = self._body()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            form = json.loads(body or b"{}")
            paths, expand = form.get("paths", []), bool(form.get("expand"))
        else:
            form = parse_qs(body.decode())
            paths, expand = form.get("paths", []), form.get("expand", ["false"])[0].lower() in ("1", "true")
        with self.store.lock:
            repo = self.store.get(repo_type, repo_id, self._user())
            _, files = self.store.files(repo, revision)
            out = []
            for path in dict.fromkeys(p.strip("/") for p in paths):
                if path in files or any(p.startswith(path + "/") for p in files):
                    out.append(self._entry(repo, path, files, expand))
        self._json(out)

    def commits(self, repo_type: str, repo_id: str, revision: str) -> None:
        """The history of a revision, newest first."""
        with self.store.lock:
            repo = self.store.get(repo_type, repo_id, self._user())
            sha: str | None = self.store.resolve(repo, revision)
            out = []
            while sha is not None:
                c = repo["commits"][sha]
                out.append(
                    {
                        "id": sha,
                        "title": c["title"],
                        "message": c["message"],
                        "authors": [{"user": c["author"]}],
                        "date": _iso(c["date"]),
                    }
                )
                sha = c["parent"]
        self._json(out)

    # ------------------------------------------------------------------ refs
    def refs(self, repo_type: str, repo_id: str) -> None:
        with self.store.lock:
            repo = self.store.get(repo_type, repo_id, self._user())
            branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": s} for n, s in repo["branches"].items()]
            tags = [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": s} for n, s in repo["tags"].items()]
        self._json({"branches": branches, "converts": [], "tags": tags, "pullRequests": []})

    def create_branch(self, repo_type: str, repo_id: str, name: str) -> None:
        user = self._require_user()
        start = self._json_body().get("startingPoint") or "main"
        with self.store.lock:
            repo = self.store.get(repo_type, repo_id, user)
            if name in repo["branches"] or name in repo["tags"]:
                raise HubError(409, f"Reference already exists: {name}")
            if not re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", name) or _SHA1.match(name):
                raise HubError(400, f"Invalid branch name: {name!r}")
            repo["branches"][name] = self.store.resolve(repo, start)
            self.store.save()
        self._json({})

    def delete_branch(self, repo_type: str, repo_id: str, name: str) -> None:
        user = self._require_user()
        with self.store.lock:
            repo = self.store.get(repo_type, repo_id, user)
            if name == "main":
                raise HubError(403, "The main branch cannot be deleted.")
            if name not in repo["branches"]:
                raise HubError(404, f"Invalid rev id: {name}", "RevisionNotFound")
            del repo["branches"][name]
            self.store.save()
        self._json({})

    def create_tag(self, repo_type: str, repo_id: str, revision: str) -> None:
        user = self._require_user()
        tag = self._json_body().get("tag") or ""
        with self.store.lock:
            repo = self.store.get(repo_type, repo_id, user)
            if tag in repo["tags"] or tag in repo["branches"]:
                raise HubError(409, f"Tag already exists: {tag}")
            if not re.fullmatch(r"[A-Za-z0-9._-]+", tag) or _SHA1.match(tag):
                raise HubError(400, f"Invalid tag name: {tag!r}")
            repo["tags"][tag] = self.store.resolve(repo, revision)
            self.store.save()
        self._json({})

    def delete_tag(self, repo_type: str, repo_id: str, tag: str) -> None:
        user = self._require_user()
        with self.store.lock:
            repo = self.store.get(repo_type, repo_id, user)
            if repo["tags"].pop(tag, None) is None:
                raise HubError(404, f"Invalid rev id: {tag}", "RevisionNotFound")
            self.store.save()
        self._json({})

    # ------------------------------------------------------------------ downloads
    def resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        """Serve a file (GET) or its headers (HEAD) at a revision, with a single byte range if asked."""
        revision, path = unquote(revision), unquote(path)
        with self.store.lock:
            repo = self.store.get(repo_type, repo_id, self._user())
            sha, files = self.store.files(repo, revision)
            f = files.get(path)
        if f is None:
            raise HubError(404, f"Entry not found: {path!r} at {revision}.", "EntryNotFound")
        blob_path = self.store.blob_path(f["sha256"])  # checked before any header is sent
        size = f["size"]
        headers = {"X-Repo-Commit": sha, "ETag": f'"{f["oid"]}"', "Accept-Ranges": "bytes"}
        if f["lfs"]:
            headers |= {"X-Linked-Etag": f'"{f["sha256"]}"', "X-Linked-Size": str(size)}
        start, end, status = 0, size - 1, 200
        if rng := self.headers.get("Range"):
            m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", rng)
            if m is None or not (m[1] or m[2]):
                raise HubError(416, f"Unsupported Range: {rng}")
            if m[1]:
                start, end = int(m[1]), min(int(m[2]) if m[2] else size - 1, size - 1)
            else:
                start = max(0, size - int(m[2]))
            if start >= size or start > end:
                raise HubError(416, f"Range {rng} not satisfiable for {size} bytes.")
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            status = 206
        length = max(0, end - start + 1)
        self._send(status, headers=headers, content_type="application/octet-stream", length=length)
        if self.command == "HEAD" or length == 0:
            return
        with open(blob_path, "rb") as blob:
            blob.seek(start)
            self._copy(blob, length)

    def _copy(self, source: BinaryIO, length: int) -> None:
        while length > 0:
            chunk = source.read(min(_CHUNK, length))
            if not chunk:
                raise OSError("blob shorter than recorded")
            self.wfile.write(chunk)
            length -= len(chunk)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    hub: LocalHubServer

    def handle_error(self, request: Any, client_address: Any) -> None:  # a dropped connection is not news
        if self.hub.verbose:
            super().handle_error(request, client_address)


class LocalHubServer:
    """A Hub-compatible server on ``host:port`` (``port=0``: a free one), storing everything under ``root``.

    Args:
        root: folder for the blobs and ``repos.json`` (created if missing; an existing one is served again).
        host: the address to bind.
        port: the port, 0 for a free one (see ``endpoint``).
        tokens: accepted tokens -> user names (default ``{"hf_test_token": "tester"}``).
        verbose: log every request to stderr.

    ``start()``/``stop()`` or ``with LocalHubServer(root) as hub:``; requests are served on daemon threads.
    ``errors`` collects the tracebacks of handler exceptions (answered 500) and ``unhandled`` the requests no route
    matched (answered 404), to make a missing endpoint easy to see.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        tokens: Mapping[str, str] | None = None,
        verbose: bool = False,
    ):
        self.tokens = dict(DEFAULT_TOKENS if tokens is None else tokens)
        well_known = sorted(t for t in self.tokens if t in DEFAULT_TOKENS)
        if well_known and not is_loopback(host):
            raise ValueError(
                f"host={host!r}: the well-known test token {well_known[0]!r} would let anyone on the network write; "
                "bind to 127.0.0.1 or pass tokens={'<a secret token>': '<user>'} (--token SECRET=USER)."
            )
        self.store = _Store(Path(root))
        self.verbose = verbose
        self.errors: list[str] = []
        self.unhandled: list[str] = []
        self._httpd = _HTTPServer((host, port), _Handler)  # bound and listening from here on
        self._httpd.hub = self
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (what ``HF_ENDPOINT`` should be)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def root(self) -> Path:
        return self.store.root

    def start(self) -> LocalHubServer:
        """Serve on a background thread; returns once the server accepts connections."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.05,), name="local-hub", daemon=True
            )
            self._thread.start()
            host, port = self._httpd.server_address[:2]
            with socket.create_connection((host, port), timeout=10):
                pass
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until ``stop()`` (or Ctrl-C in ``main``)."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> LocalHubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalHubServer({str(self.root)!r}, endpoint={self.endpoint!r})"


def _parse_token(value: str) -> tuple[str, str]:
    token, sep, user = value.partition("=")
    if not sep or not token or not user:
        raise argparse.ArgumentTypeError(f"expected TOKEN=USER, got {value!r}")
    return token, user


def main(argv: list[str] | None = None) -> None:
    """``python -m mmquant.hub.local_server --root DIR [--port N] [--token TOKEN=USER ...] [--quiet]``."""
    parser = argparse.ArgumentParser(
        prog="python -m mmquant.hub.local_server",
        description="Run a local Hugging Face Hub-compatible server (set HF_ENDPOINT to it and HF_HUB_DISABLE_XET=1).",
    )
    parser.add_argument("--root", required=True, help="folder for the blobs and repos.json (kept between runs)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123, help="0 picks a free port")
    parser.add_argument(
        "--token", type=_parse_token, action="append", metavar="TOKEN=USER", help="accepted token (repeatable)"
    )
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    tokens = dict(args.token) if args.token else None
    try:
        server = LocalHubServer(args.root, host=args.host, port=args.port, tokens=tokens, verbose=not args.quiet)
    except ValueError as e:
        parser.error(str(e).replace("host=", "--host ", 1))
    print(f"local hub at {server.endpoint} (root {server.root}); tokens: {server.tokens}", flush=True)
    print(f"  export HF_ENDPOINT={server.endpoint} HF_HUB_DISABLE_XET=1 HF_TOKEN=<token>", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._httpd.server_close()


if __name__ == "__main__":
    main()
