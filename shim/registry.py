"""A client for the OCI distribution spec (pull side): manifests and blobs over HTTP(S).

Auth: anonymous first; on a 401 the WWW-Authenticate challenge says Basic (credentials sent
as they are) or Bearer (a token fetched from the realm, with the credentials if any).
"""

from __future__ import annotations

import base64
import glob
import json
import os
import re
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPResponse

from .errors import OcishError
from .store import digest_of

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MAX_MANIFEST = 4 << 20

_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="r",service="s"`` -> ("bearer", {"realm": "r", "service": "s"})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): (q if q else u) for k, q, u in _PARAM_RE.findall(rest)}
    return scheme.lower(), params


def _registry_error(exc: urllib.error.HTTPError, what: str) -> OcishError:
    try:
        body = json.loads(exc.read(65536) or b"{}")
        errs = body.get("errors") or []
        detail = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")
                           for e in errs if isinstance(e, dict))
    except (ValueError, AttributeError, OSError):
        detail = ""
    return OcishError(f"{what}: {exc.code} {exc.reason}" + (f" ({detail})" if detail else ""))


class RegistryClient:
    """One registry host; thread-safe, so layers can be fetched concurrently."""

    def __init__(self, registry: str, *, tls_verify: bool = True,
                 creds: tuple[str, str] | None = None, cert_dir: str | None = None,
                 timeout: float = 60) -> None:
        self.host = "registry-1.docker.io" if registry == "docker.io" else registry
        self.tls_verify = tls_verify
        self.creds = creds
        self.timeout = timeout
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._scheme: str | None = None
        ctx = ssl.create_default_context()
        if not tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            dirs = [cert_dir] if cert_dir else []
            dirs.append(os.path.join("/etc/containers/certs.d", registry))
            dirs.append(os.path.join("/etc/docker/certs.d", registry))
            for d in dirs:
                for crt in sorted(glob.glob(os.path.join(d, "*.crt"))):
                    ctx.load_verify_locations(cafile=crt)
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx))

    # -- transport ---------------------------------------------------------------------------

    def _base(self) -> str:
        if self._scheme is None:
            scheme = "https"
            if not self.tls_verify:
                try:
                    self._opener.open(f"https://{self.host}/v2/", timeout=self.timeout).close()
                except urllib.error.HTTPError:
                    pass
                except (urllib.error.URLError, OSError):
                    scheme = "http"
            self._scheme = scheme
        return f"{self._scheme}://{self.host}"

    def _open(self, url: str, headers: dict[str, str], auth: str | None,
              method: str = "GET") -> HTTPResponse:
        req = urllib.request.Request(url, headers=headers, method=method)
        if auth:
            # unredirected: never forwarded to the storage backend a blob redirects to
            req.add_unredirected_header("Authorization", auth)
        resp = self._opener.open(req, timeout=self.timeout)
        assert isinstance(resp, HTTPResponse)
        return resp

    def request(self, path: str, scope: str, what: str, headers: dict[str, str] | None = None,
                method: str = "GET") -> HTTPResponse:
        """A request for *path* (under /v2/) with whatever auth the registry asks for."""
        url = self._base() + path
        hdrs = dict(headers or {})
        try:
            for attempt in range(2):
                auth = self._tokens.get(scope)
                try:
                    return self._open(url, hdrs, auth, method)
                except urllib.error.HTTPError as exc:
                    if exc.code != 401 or attempt:
                        raise _registry_error(exc, what) from None
                    challenge = exc.headers.get("WWW-Authenticate", "")
                    exc.close()
                    self._authenticate(challenge, scope, what)
        except urllib.error.URLError as exc:
            raise OcishError(f"{what}: {self.host}: {exc.reason}") from None
        except OSError as exc:
            raise OcishError(f"{what}: {self.host}: {exc}") from None
        raise OcishError(f"{what}: unauthorized")

    def _authenticate(self, challenge: str, scope: str, what: str) -> None:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if not self.creds:
                raise OcishError(f"{what}: unauthorized: authentication required "
                                 "(use --creds USER:PASSWORD)")
            raw = f"{self.creds[0]}:{self.creds[1]}".encode()
            with self._lock:
                self._tokens[scope] = "Basic " + base64.b64encode(raw).decode()
            return
        if scheme != "bearer" or "realm" not in params:
            raise OcishError(f"{what}: unauthorized (unsupported challenge {challenge!r})")
        query = {"scope": scope}
        if "service" in params:
            query["service"] = params["service"]
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + \
            urllib.parse.urlencode(query)
        auth = None
        if self.creds:
            raw = f"{self.creds[0]}:{self.creds[1]}".encode()
            auth = "Basic " + base64.b64encode(raw).decode()
        try:
            with self._open(url, {}, auth) as resp:
                body = json.loads(resp.read(1 << 20))
        except urllib.error.HTTPError as exc:
            raise _registry_error(exc, f"{what}: token from {params['realm']}") from None
        except (urllib.error.URLError, ValueError, OSError) as exc:
            raise OcishError(f"{what}: token from {params['realm']}: {exc}") from None
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise OcishError(f"{what}: the token server gave no token")
        with self._lock:
            self._tokens[scope] = "Bearer " + token

    # -- API ---------------------------------------------------------------------------------

    def get_manifest(self, repo: str, reference: str) -> tuple[bytes, str, str]:
        """Fetch a manifest or index: (bytes, media type, verified digest)."""
        what = f"{self.host}/{repo}:{reference}" if ":" not in reference else \
            f"{self.host}/{repo}@{reference}"
        with self.request(f"/v2/{repo}/manifests/{reference}", f"repository:{repo}:pull",
                          what, {"Accept": ", ".join(MANIFEST_TYPES)}) as resp:
            data = resp.read(MAX_MANIFEST + 1)
            if len(data) > MAX_MANIFEST:
                raise OcishError(f"{what}: manifest larger than {MAX_MANIFEST} bytes")
            ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
            header_digest = resp.headers.get("Docker-Content-Digest")
        digest = digest_of(data)
        if reference.startswith("sha256:") and digest != reference:
            raise OcishError(f"{what}: manifest digest mismatch (got {digest})")
        if header_digest and header_digest.startswith("sha256:") and header_digest != digest:
            raise OcishError(f"{what}: manifest digest {digest} differs from the registry's "
                             f"{header_digest}")
        try:
            media_type = json.loads(data).get("mediaType") or ctype
        except (ValueError, AttributeError):
            raise OcishError(f"{what}: manifest is not JSON") from None
        if media_type not in MANIFEST_TYPES:
            raise OcishError(f"{what}: unsupported manifest type {media_type!r}")
        return data, media_type, digest

    def open_blob(self, repo: str, digest: str) -> HTTPResponse:
        """A streaming response for blob *digest* (the caller verifies what it reads)."""
        return self.request(f"/v2/{repo}/blobs/{digest}", f"repository:{repo}:pull",
                            f"{self.host}/{repo}@{digest}")
