"""A client for the OCI distribution spec: the transport, auth and TLS of one registry host,
and the pull side (manifests and blobs; shim/upload.py is the push side).

Auth: anonymous first; on a 401 the WWW-Authenticate challenge says Basic (credentials sent
as they are) or Bearer (a token fetched from the realm for the request's scopes, with the
credentials if any). TLS trusts the system CAs plus the *.crt of --cert-dir and of
/etc/containers/certs.d/HOST and /etc/docker/certs.d/HOST; those are loaded when the first HTTPS
connection is made, and never with --tls-verify=false (which checks no certificate: loading the
system CA bundle alone costs ~20 ms).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPResponse

from ..errors import OcishError
from ..storage.content import digest_of

TYPE_CHECKING = False  # not typing's: pull imports this module, typing costs ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

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


class RegistryError(OcishError):
    """A registry (or its token server) answered with an HTTP error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        # the HTTP status; not OcishError.status, the command's exit status (a 404 as that
        # made ``pull`` and ``run`` of an unknown image exit with 404 & 0xff = 148)
        self.http_status = status


def _registry_error(exc: urllib.error.HTTPError, what: str) -> RegistryError:
    try:
        body = json.loads(exc.read(65536) or b"{}")
        errs = body.get("errors") or []
        detail = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ")
                           for e in errs if isinstance(e, dict))
    except (ValueError, AttributeError, OSError):
        detail = ""
    return RegistryError(f"{what}: {exc.code} {exc.reason}" + (f" ({detail})" if detail else ""),
                         exc.code)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    """urllib's HTTPS with a TLS context made by *context* when an HTTPS connection is made
    (not when the client is: a plain-HTTP registry never needs one)."""

    def __init__(self, context: Callable[[], ssl.SSLContext]) -> None:
        super().__init__()
        self._make_context = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(http.client.HTTPSConnection, req,
                            context=self._make_context())


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
        self._basic: str | None = None  # a Basic challenge's answer serves every scope
        self._lock = threading.Lock()
        self._scheme: str | None = None
        self._cert_dirs = [cert_dir] if cert_dir else []
        self._cert_dirs += [os.path.join("/etc/containers/certs.d", registry),
                            os.path.join("/etc/docker/certs.d", registry)]
        self._ssl: ssl.SSLContext | None = None
        self._opener = urllib.request.build_opener(_HTTPSHandler(self._ssl_context))

    def _ssl_context(self) -> ssl.SSLContext:
        """The TLS context, made once, on the first HTTPS connection: the system CAs and the
        host's *.crt; with --tls-verify=false no CA at all (no certificate is checked)."""
        with self._lock:
            if self._ssl is None:
                if self.tls_verify:
                    import glob

                    ctx = ssl.create_default_context()
                    for d in self._cert_dirs:
                        for crt in sorted(glob.glob(os.path.join(d, "*.crt"))):
                            ctx.load_verify_locations(cafile=crt)
                else:
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                self._ssl = ctx
            return self._ssl

    # -- transport ---------------------------------------------------------------------------

    def base_url(self) -> str:
        """``scheme://host`` (with --tls-verify=false: HTTPS if it answers, else HTTP)."""
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
              method: str = "GET", data: bytes | BinaryIO | None = None) -> HTTPResponse:
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        if auth:
            # unredirected: never forwarded to the storage backend a blob redirects to
            req.add_unredirected_header("Authorization", auth)
        resp = self._opener.open(req, timeout=self.timeout)
        assert isinstance(resp, HTTPResponse)
        return resp

    def _base_url_for(self, path: str) -> str:
        """*path* under this registry, or an absolute URL (an upload location) as it is."""
        return urllib.parse.urljoin(self.base_url() + "/", path)

    def request(self, path: str, scope: str, what: str, headers: dict[str, str] | None = None,
                method: str = "GET", data: bytes | BinaryIO | None = None) -> HTTPResponse:
        """A request for *path* (under /v2/, or a URL the registry gave) with whatever auth
        the registry asks for; *scope* is space-separated token scopes ("" for none). A file
        *data* is rewound to where it was if the request has to be sent again."""
        url = self._base_url_for(path)
        same_host = urllib.parse.urlsplit(url).netloc == self.host
        hdrs = dict(headers or {})
        start = data.tell() if data is not None and not isinstance(data, bytes) else 0
        try:
            for attempt in range(2):
                # the registry's credentials for its own host only (not an upload elsewhere)
                auth = (self._tokens.get(scope) or self._basic) if same_host else None
                if data is not None and not isinstance(data, bytes):
                    data.seek(start)
                try:
                    return self._open(url, hdrs, auth, method, data)
                except urllib.error.HTTPError as exc:
                    if exc.code != 401 or attempt:
                        err = _registry_error(exc, what)
                        if exc.code == 401 and not self.creds:
                            err.args = (f"{err} (log in with 'ocish login')",)
                        raise err from None
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
                raise RegistryError(f"{what}: unauthorized: authentication required "
                                    "(use 'ocish login' or --creds USER:PASSWORD)", 401)
            self._basic = self._basic_auth()
            return
        if scheme != "bearer" or "realm" not in params:
            raise OcishError(f"{what}: unauthorized (unsupported challenge {challenge!r})")
        query = [("scope", s) for s in scope.split()]
        if "service" in params:
            query.append(("service", params["service"]))
        if self.creds:
            query.append(("account", self.creds[0]))
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + \
            urllib.parse.urlencode(query)
        auth = self._basic_auth() if self.creds else None
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

    def _basic_auth(self) -> str:
        assert self.creds is not None
        raw = f"{self.creds[0]}:{self.creds[1]}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    # -- API ---------------------------------------------------------------------------------

    def ping(self, what: str) -> None:
        """``GET /v2/`` through the challenge flow: proves the credentials (login)."""
        self.request("/v2/", "", what).close()

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
