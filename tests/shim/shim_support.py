"""Helpers for the ocish tests: a real docker-registry on 127.0.0.1 and busybox images built by umoci.

The registry runs with its own config and storage in a tmp dir and is stopped by pid at the
end of the session, pass or fail. Images are pushed with skopeo.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

REPO = Path(__file__).resolve().parents[2]
# Test what ships: the ocish `make test-install` puts in the checkout (the recipe of `make
# install`; tox's unit env and `make unit` run it first). Only a checkout where build/prefix was
# never installed (a bare `pytest tests/shim` after `make dev`) falls back to the dev launcher.
_INSTALLED = REPO / "build" / "prefix" / "bin" / "ocish"
OCISH = _INSTALLED if _INSTALLED.exists() else REPO / ".venv" / "bin" / "ocish"
MKROOTFS = REPO / "bundles" / "mkrootfs"
USER, PASSWORD = "testuser", "testpass"
_ACCESS_RE = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3}) ')


def run(*cmd: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a helper tool, failing the test with its stderr if it fails."""
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300,
                         **kw)  # type: ignore[call-overload]
    assert res.returncode == 0, f"{cmd}: {res.stderr}"
    return res  # type: ignore[no-any-return]


def ocish(root: Path, *args: str, check: bool = True, **kw: object
          ) -> subprocess.CompletedProcess[str]:
    """Run ocish (``OCISH``: the installed one) with --root ROOT."""
    res = subprocess.run([str(OCISH), "--root", str(root), *args], capture_output=True,
                         text=True, timeout=300, **kw)  # type: ignore[call-overload]
    if check:
        assert res.returncode == 0, f"ocish {args}: {res.stderr}"
    return res  # type: ignore[no-any-return]


def pull_killed_when(root: Path, ref: str, ready: Callable[[], bool], what: str) -> None:
    """Start ``ocish pull`` of *ref* and SIGKILL it as soon as *ready()* (failing the test if the
    pull ends first, or if there is no *what* within 60 s)."""
    proc = subprocess.Popen([str(OCISH), "--root", str(root), "pull", "--tls-verify=false", ref],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    try:
        while not ready():
            assert proc.poll() is None, "the pull ended before it could be killed"
            assert time.monotonic() < deadline, f"no {what}"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def size(path: Path) -> int:
    """A file's size; 0 if it is gone (a download renamed into place meanwhile)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    """The failed command's error: one ``ocish: ...`` line, no traceback."""
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ocish: "), res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Registry:
    """A running docker-registry."""

    host: str
    log: Path
    proc: subprocess.Popen[bytes]
    auth: tuple[str, str] | None = None
    scheme: str = "http"

    def requests(self, since: int = 0) -> list[Request]:
        """The requests the registry has served (from its access log), from number *since*."""
        size = -1
        while size != self.log.stat().st_size:  # a line is logged just after its response
            size = self.log.stat().st_size
            time.sleep(0.05)
        return [Request(m.group(1), m.group(2), int(m.group(3)))
                for m in map(_ACCESS_RE.search, self.log.read_text(errors="replace")
                             .splitlines()) if m][since:]

    def blob_gets(self) -> int:
        """How many blob GETs the registry has served so far."""
        return sum(1 for r in self.requests() if r.method == "GET" and "/blobs/" in r.path)

    def _req(self, method: str, path: str, data: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[bytes, dict[str, str]]:
        req = urllib.request.Request(f"{self.scheme}://{self.host}{path}", data=data,
                                     method=method, headers=headers or {})
        if self.auth:
            raw = f"{self.auth[0]}:{self.auth[1]}".encode()
            req.add_header("Authorization", "Basic " + base64.b64encode(raw).decode())
        ctx = ssl._create_unverified_context() if self.scheme == "https" else None
        with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
            return resp.read(), dict(resp.headers)

    def manifest(self, repo: str, ref: str) -> tuple[bytes, str]:
        """A manifest's bytes and media type as stored."""
        accept = ", ".join([
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json"])
        body, hdrs = self._req("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": accept})
        return body, json.loads(body).get("mediaType") or hdrs["Content-Type"]

    def put_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> None:
        """Upload a manifest (an index, in these tests)."""
        self._req("PUT", f"/v2/{repo}/manifests/{ref}", body, {"Content-Type": media_type})

    def put_blob(self, repo: str, data: bytes) -> dict[str, object]:
        """Upload a blob (monolithic POST + PUT); its descriptor's digest and size."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        _, hdrs = self._req("POST", f"/v2/{repo}/blobs/uploads/")
        loc = hdrs["Location"].split(self.host, 1)[-1]
        self._req("PUT", f"{loc}{'&' if '?' in loc else '?'}digest={digest}", data,
                  {"Content-Type": "application/octet-stream"})
        return {"digest": digest, "size": len(data)}

    def delete_blob(self, repo: str, digest: str) -> None:
        """Unlink a blob from a repository."""
        self._req("DELETE", f"/v2/{repo}/blobs/{digest}")

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the registry by its pid."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@dataclass
class Request:
    """One request in a registry's access log."""

    method: str
    path: str
    status: int

    @property
    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))


def start_registry(base: Path, htpasswd: Path | None = None, *,
                   tls: tuple[Path, Path] | None = None, token: str = "") -> Registry:
    """Start docker-registry on a free 127.0.0.1 port with storage under *base*: plain HTTP,
    or HTTPS with *tls* (certificate, key); auth by *htpasswd*, or *token* (the YAML flow
    mapping of docker-registry's ``auth: token`` settings)."""
    base.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    auth = f"auth: {{htpasswd: {{realm: basic-realm, path: {htpasswd}}}}}\n" if htpasswd else ""
    auth += f"auth: {{token: {token}}}\n" if token else ""
    tls_conf = f", tls: {{certificate: {tls[0]}, key: {tls[1]}}}" if tls else ""
    (base / "config.yml").write_text(
        "version: 0.1\nlog: {level: info}\n"
        f"storage:\n  filesystem: {{rootdirectory: {base / 'data'}}}\n"
        "  delete: {enabled: true}\n"
        f"http: {{addr: 127.0.0.1:{port}{tls_conf}}}\n" + auth)
    log = base / "registry.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["docker-registry", "serve", str(base / "config.yml")],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    reg = Registry(f"127.0.0.1:{port}", log, proc, scheme="https" if tls else "http")
    ctx = ssl._create_unverified_context() if tls else None
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{reg.scheme}://{reg.host}/v2/", timeout=2,
                                   context=ctx).close()
            break
        except urllib.error.HTTPError:
            break  # 401: up, with auth
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                reg.stop()
                raise RuntimeError(f"docker-registry did not start: {log.read_text()}") from None
            time.sleep(0.05)
    return reg


class Proxy(http.server.ThreadingHTTPServer):
    """An HTTP proxy on 127.0.0.1 in front of one registry, for pulls (GETs), that streams what
    the registry answers and can make it worse: ``rate`` bytes a second at most per connection
    (so that a pull can be caught mid-layer; 0: full speed, and it may change while pulling),
    and one blob spoiled: a byte flipped in its middle ("flip"), or the connection closed
    halfway ("cut").

    Bounded: it forwards only to that registry, holds one piece (16 KiB) of a body at a time,
    every wait has an end (30 s upstream and per client read or write; a throttled transfer
    stops when the proxy does), and leaving the ``with`` block stops it.
    """

    PIECE = 16 << 10

    def __init__(self, registry: Registry, rate: int = 0, spoil: tuple[str, str] | None = None
                 ) -> None:
        self.rate = rate
        self.stopping = threading.Event()
        self.upstream = upstream = registry.host
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 30

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                req = urllib.request.Request(f"http://{upstream}{self.path}",
                                             headers={k: v for k, v in self.headers.items()
                                                      if k.lower() in ("accept",
                                                                       "authorization")})
                try:
                    resp = urllib.request.urlopen(req, timeout=30)
                except urllib.error.HTTPError as exc:
                    resp = exc
                with resp:
                    self.send_response(resp.status)
                    for key in ("Content-Type", "Content-Length", "Docker-Content-Digest",
                                "WWW-Authenticate"):
                        if resp.headers.get(key):
                            self.send_header(key, resp.headers[key])
                    self.end_headers()
                    how = spoil[1] if spoil and self.path.endswith(f"/blobs/{spoil[0]}") else ""
                    proxy.relay(resp, self.wfile, int(resp.headers.get("Content-Length", 0)),
                                how)
                self.close_connection = True

        super().__init__(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server_address[1]}"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def via(self, ref: str) -> str:
        """The image reference *ref* (of the registry) as pulled through this proxy."""
        return ref.replace(self.upstream, self.host, 1)

    def relay(self, src: BinaryIO, dst: BinaryIO, size: int, how: str) -> None:
        """Copy the body piece by piece, at most ``rate`` bytes a second, spoiled as *how* says."""
        half, sent = size // 2, 0
        while not self.stopping.is_set() and (piece := src.read(self.PIECE)):
            if how == "flip" and sent <= half < sent + len(piece):
                at = half - sent
                piece = piece[:at] + bytes([piece[at] ^ 0xFF]) + piece[at + 1:]
            if how == "cut":
                piece = piece[:max(half - sent, 0)]
            dst.write(piece)
            sent += len(piece)
            if how == "cut" and sent >= half:
                return
            if self.rate:
                self.stopping.wait(len(piece) / self.rate)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client gone mid-body (a pull killed on purpose) is no error worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def __enter__(self) -> Proxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self.thread.join(10)


@dataclass
class Images:
    """What the session pushed: names and expected facts."""

    registry: Registry
    layout: Path
    repo: str = "test/busybox"
    docker_repo: str = "test/busybox-docker"
    big_repo: str = "test/big"
    digest: str = ""
    docker_digest: str = ""
    big_digest: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def ref(self, repo: str | None = None, tag: str = "latest") -> str:
        return f"{self.registry.host}/{repo or self.repo}:{tag}"


def bundle_step(layout: Path, tag: str, work: Path, change: object) -> None:
    bundle = work / f"bundle-{time.monotonic_ns()}"
    run("umoci", "unpack", "--image", f"{layout}:{tag}", bundle)
    change(bundle / "rootfs")  # type: ignore[operator]
    run("umoci", "repack", "--image", f"{layout}:{tag}", bundle)
    shutil.rmtree(bundle)


def layer1(rootfs: Path) -> None:
    run(MKROOTFS, rootfs)


def layer2(rootfs: Path) -> None:
    data = rootfs / "data"
    (data / "dir").mkdir(parents=True)
    (data / "hello.txt").write_text("hello\n")
    os.link(data / "hello.txt", data / "hello-hard")
    os.symlink("hello.txt", data / "hello-sym")
    (data / "gone.txt").write_text("soon gone\n")
    (data / "dir" / "keep").write_text("kept\n")
    os.chown(data / "dir" / "keep", 1234, 5678)
    os.chmod(data / "dir" / "keep", 0o640)
    os.utime(data / "dir" / "keep", (1_000_000_000, 1_000_000_000))


def layer3(rootfs: Path) -> None:
    (rootfs / "data" / "gone.txt").unlink()
    (rootfs / "etc" / "hostname").unlink()
    (rootfs / "data" / "new.txt").write_text("new\n")


def big_layer(rootfs: Path) -> None:
    (rootfs / "big.bin").write_bytes(os.urandom(4 << 20))


def skopeo_digest(reg: Registry, repo: str, tag: str = "latest") -> str:
    """The Digest that `skopeo inspect` reports."""
    out = run("skopeo", "inspect", "--tls-verify=false", f"docker://{reg.host}/{repo}:{tag}")
    return str(json.loads(out.stdout)["Digest"])


def push(reg: Registry, layout: Path, tag: str, repo: str, dest_tag: str = "latest",
         *extra: str) -> None:
    """skopeo copy an image of the OCI layout into the registry."""
    creds = ["--dest-creds", f"{reg.auth[0]}:{reg.auth[1]}"] if reg.auth else []
    run("skopeo", "copy", "--dest-tls-verify=false", *creds, *extra, f"oci:{layout}:{tag}",
        f"docker://{reg.host}/{repo}:{dest_tag}")


def layer_tar(entries: list[tuple[tarfile.TarInfo, bytes | None]], compress: bool = False
              ) -> bytes:
    """A pax tar of *entries* (each with its data, or None), gzipped if *compress*."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    return gzip.compress(raw) if compress else raw


def sha256_file(path: Path) -> str:
    """sha256 of a file, as a digest."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def assert_store_sound(root: Path) -> None:
    """Every blob's content matches its name; no snapshot is half made."""
    for path in (root / "blobs" / "sha256").iterdir():
        assert sha256_file(path) == "sha256:" + path.name, f"corrupt blob {path}"
    for snap in (root / "snapshots").iterdir():
        if not snap.name.startswith("tmp-"):
            assert (snap / "fs").is_dir() and (snap / "info.json").is_file()
