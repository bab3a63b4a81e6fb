"""The push side of the OCI distribution spec, on a RegistryClient: blob existence checks,
cross-repository mounts, monolithic and chunked blob uploads, and manifest uploads.

Monolithic: ``POST /v2/<repo>/blobs/uploads/`` (202 and a Location), then ``PUT
<location>?digest=<digest>`` with the whole blob. Chunked: the same POST, then one ``PATCH
<location>`` per chunk with ``Content-Range: <first>-<last>`` (each 202 gives the next
Location), then ``PUT <location>?digest=<digest>`` with no body. Mount: ``POST
/v2/<repo>/blobs/uploads/?mount=<digest>&from=<other repo>``: 201 when the registry linked the
blob, else 202 and an upload location, as a plain POST.
"""

from __future__ import annotations

import urllib.parse

from ..errors import OcishError
from .client import RegistryClient, RegistryError

TYPE_CHECKING = False  # not typing's: typing costs ms
if TYPE_CHECKING:
    from http.client import HTTPResponse
    from typing import BinaryIO

OCTETS = "application/octet-stream"


def push_scope(repo: str) -> str:
    """The token scope of an upload to *repo*."""
    return f"repository:{repo}:pull,push"


def blob_exists(client: RegistryClient, repo: str, digest: str) -> bool:
    """``HEAD /v2/<repo>/blobs/<digest>``: whether *repo* already has the blob."""
    try:
        client.request(f"/v2/{repo}/blobs/{digest}", push_scope(repo),
                       f"{client.host}/{repo}@{digest}", method="HEAD").close()
    except RegistryError as exc:
        if exc.http_status == 404:
            return False
        raise
    return True


def _location(resp: HTTPResponse, what: str) -> str:
    location = resp.headers.get("Location")
    if not location:
        raise OcishError(f"{what}: the registry gave no upload location")
    return location


def start_upload(client: RegistryClient, repo: str, digest: str,
                 mount_from: str | None = None) -> str | None:
    """Open an upload session for *digest* in *repo*: its location, or None when the blob was
    mounted from the repository *mount_from* of the same registry instead."""
    what = f"{client.host}/{repo}@{digest}: upload"
    path, scope = f"/v2/{repo}/blobs/uploads/", push_scope(repo)
    if mount_from:
        path += "?" + urllib.parse.urlencode({"mount": digest, "from": mount_from})
        scope += f" repository:{mount_from}:pull"
        try:
            with client.request(path, scope, what, method="POST") as resp:
                if resp.status == 201:
                    return None
                return _location(resp, what)
        except RegistryError:
            pass  # not allowed to read the source: a plain upload then
    with client.request(f"/v2/{repo}/blobs/uploads/", push_scope(repo), what,
                        method="POST") as resp:
        return _location(resp, what)


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + urllib.parse.urlencode(
        {"digest": digest})


def _finish(resp: HTTPResponse, digest: str, what: str) -> None:
    with resp:
        got = resp.headers.get("Docker-Content-Digest")
        if resp.status != 201 or (got and got != digest):
            raise OcishError(f"{what}: the registry stored {got or 'nothing'} "
                             f"(status {resp.status})")


def upload_monolithic(client: RegistryClient, repo: str, location: str, digest: str,
                      blob: BinaryIO, size: int) -> None:
    """The whole blob in the closing PUT."""
    what = f"{client.host}/{repo}@{digest}: upload"
    resp = client.request(_with_digest(location, digest), push_scope(repo), what,
                          {"Content-Type": OCTETS, "Content-Length": str(size)}, "PUT", blob)
    _finish(resp, digest, what)


def upload_chunked(client: RegistryClient, repo: str, location: str, digest: str,
                   blob: BinaryIO, size: int, chunk_size: int) -> int:
    """PATCH the blob in chunks of *chunk_size*, then the closing PUT; returns the number of
    chunks sent."""
    what = f"{client.host}/{repo}@{digest}: chunked upload"
    offset = chunks = 0
    while offset < size:
        data = blob.read(min(chunk_size, size - offset))
        if not data:
            raise OcishError(f"{what}: the local blob is shorter than {size} bytes")
        last = offset + len(data) - 1
        with client.request(location, push_scope(repo), what,
                            {"Content-Type": OCTETS, "Content-Length": str(len(data)),
                             "Content-Range": f"{offset}-{last}"}, "PATCH", data) as resp:
            location = _location(resp, what)
            got = resp.headers.get("Range", "")
            if got and got.split("-")[-1] != str(last):
                raise OcishError(f"{what}: the registry has {got}, sent 0-{last}")
        offset, chunks = last + 1, chunks + 1
    _finish(client.request(_with_digest(location, digest), push_scope(repo), what,
                           {"Content-Length": "0"}, "PUT"), digest, what)
    return chunks


def put_manifest(client: RegistryClient, repo: str, tag: str, data: bytes,
                 media_type: str) -> str:
    """``PUT /v2/<repo>/manifests/<tag>`` with its media type; returns the registry's digest."""
    what = f"{client.host}/{repo}:{tag}: manifest upload"
    with client.request(f"/v2/{repo}/manifests/{tag}", push_scope(repo), what,
                        {"Content-Type": media_type}, "PUT", data) as resp:
        return str(resp.headers.get("Docker-Content-Digest") or "")
