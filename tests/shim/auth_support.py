"""Helpers for the ocish auth tests: certificates made with openssl, and a token server.

The token server is the one a docker-registry with ``auth: token`` sends clients to: it
checks Basic credentials and answers with a JWT (RS256, signed by ``openssl dgst``) whose
``x5c`` header holds its certificate, the registry's ``rootcertbundle``. It grants a known user
every action asked for, and anyone else none. It runs in a thread of the test process, on
127.0.0.1, and records what it was asked.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from shim_support import run

SERVICE, ISSUER = "ocish-test-registry", "ocish-test-token-issuer"


def make_ca(directory: Path, name: str = "ocish-test-ca") -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    crt, key = directory / f"{name}.crt", directory / f"{name}.key"
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
        "-subj", f"/CN={name}", "-keyout", key, "-out", crt,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")
    return crt, key


def make_server_cert(directory: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by *ca*: (certificate, key)."""
    crt, key, csr = directory / "server.crt", directory / "server.key", directory / "server.csr"
    ext = directory / "server.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=critical,digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
                   "authorityKeyIdentifier=keyid,issuer\n")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", key, "-out", csr)
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-days", "2",
        "-set_serial", str(secrets.randbits(63)), "-sha256", "-extfile", ext, "-out", crt)
    return crt, key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    """A running token server (see the module's docstring)."""

    cert: Path
    key: Path
    users: dict[str, str]
    asked: list[dict[str, list[str]]] = field(default_factory=list)  # each request's query
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def registry_config(self) -> str:
        """The ``auth: token`` settings of a registry that trusts this server."""
        return (f"{{realm: \"{self.realm}\", service: {SERVICE}, issuer: {ISSUER}, "
                f"rootcertbundle: {self.cert}}}")

    def token(self, user: str, scopes: list[str]) -> str:
        """A JWT granting *user* the actions *scopes* ask for (none for an unknown user)."""
        access = []
        for scope in scopes if user in self.users else []:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        der = ssl.PEM_cert_to_DER_cert(self.cert.read_text())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user, "aud": SERVICE, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}." \
                        f"{_b64url(json.dumps(claims).encode())}"
        sig = run_bytes("openssl", "dgst", "-sha256", "-sign", str(self.key),
                        stdin=signing_input.encode())
        return f"{signing_input}.{_b64url(sig)}"

    def start(self) -> TokenServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                server.asked.append(query)
                user = ""
                auth = self.headers.get("Authorization", "")
                if auth.startswith("Basic "):
                    user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
                    if server.users.get(user) != password:
                        self._answer(401, {"details": "incorrect username or password"})
                        return
                token = server.token(user, query.get("scope", []))
                self._answer(200, {"token": token, "access_token": token, "expires_in": 300})

            def _answer(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join(10)


def run_bytes(*cmd: str, stdin: bytes) -> bytes:
    """Run a tool on *stdin*; its binary stdout."""
    res = subprocess.run(list(cmd), input=stdin, capture_output=True, timeout=60, check=False)
    assert res.returncode == 0, f"{cmd}: {res.stderr.decode(errors='replace')}"
    return res.stdout
