"""A small stand-in for the Hugging Face Hub on 127.0.0.1, for tests/test_hub.py.

It answers what huggingface_hub's `hf_hub_download` and llmplan's header reads ask, the way the Hub
does (read from huggingface_hub's file_download.py and utils/_http.py):

  HEAD|GET /{org}/{name}/resolve/{revision}/{file}
      200 with X-Repo-Commit (the commit the revision resolves to), ETag and Content-Length;
      a GET with `Range: bytes=a-b` gets 206 with Content-Range: bytes a-b/SIZE and only those bytes.
  errors, each with the X-Error-Code header that hf_raise_for_status reads:
      401 RepoNotFound (no such repo), 403 GatedRepo (a gated repo without the test token),
      404 RevisionNotFound, 404 EntryNotFound.

Safetensors files are virtual: the 8-byte length and the JSON header, then zeros up to the size
the header implies, so a 16 GB checkpoint costs nothing and a whole-file download would show up in
`served_bytes`. Every request is logged (method, path, Range) for the tests to inspect.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "hf_llmplan_test_token"


@dataclass
class Repo:
    files: dict[str, bytes | tuple[bytes, int]]  # name -> bytes, or (prefix, virtual size)
    gated: bool = False
    commit: str = ""
    revisions: tuple[str, ...] = ("main",)

    def __post_init__(self) -> None:
        if not self.commit:
            self.commit = hashlib.sha1(json.dumps(sorted(self.files)).encode()).hexdigest()


def safetensors_file(tensors: dict[str, tuple[str, list[int]]], bits: dict[str, int]) -> tuple[bytes, int]:
    """(8-byte length + header, whole size) of a safetensors file holding `tensors` (name -> dtype, shape)."""
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        count = 1
        for n in shape:
            count *= n
        nbytes = -(-count * bits[dtype] // 8)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw, 8 + len(raw) + offset


@dataclass
class Hub:
    repos: dict[str, Repo]
    log: list[tuple[str, str, str | None]] = field(default_factory=list)
    served_bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(hub: Hub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10

        def log_message(self, *args) -> None:  # quiet
            pass

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _serve(self) -> None:
            with hub.lock:
                hub.log.append((self.command, self.path, self.headers.get("Range")))
            m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.path.split("?")[0])
            if not m:
                return self._error(404, "RepoNotFound", "not a resolve URL")
            repo_id, revision, name = m.groups()
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(401, "RepoNotFound", "Repository not found")
            if repo.gated and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._error(403, "GatedRepo", "Access to model is restricted; you must have access to it and be authenticated")
            if revision not in repo.revisions and revision != repo.commit:
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            if name not in repo.files:
                return self._error(404, "EntryNotFound", "Entry not found")
            content = repo.files[name]
            prefix, size = (content, len(content)) if isinstance(content, bytes) else content
            first, last = 0, size - 1
            ranged = self.headers.get("Range")
            if ranged:
                r = re.fullmatch(r"bytes=(\d+)-(\d*)", ranged.strip())
                first, last = int(r.group(1)), min(int(r.group(2) or size - 1), size - 1)
            body = b""
            if self.command == "GET":
                body = prefix[first:last + 1]
                body += b"\0" * (last + 1 - first - len(body))
            self.send_response(206 if ranged else 200)
            self.send_header("X-Repo-Commit", repo.commit)
            self.send_header("ETag", '"' + hashlib.sha1(prefix + str(size).encode()).hexdigest() + '"')
            self.send_header("Accept-Ranges", "bytes")
            if ranged:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.send_header("Content-Length", str(last + 1 - first))
            self.end_headers()
            if body:
                self.wfile.write(body)
                with hub.lock:
                    hub.served_bytes += len(body)

        do_GET = _serve
        do_HEAD = _serve

    return Handler


class Server:
    """Start on a free port of 127.0.0.1 in a daemon thread; `close()` stops it and joins the thread."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
