"""ocish login/logout and the auth file; pull and push with saved credentials against a TLS
registry with htpasswd basic auth and a plain one with token (Bearer) auth."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from auth_support import TokenServer, make_ca, make_server_cert
from shim_support import (
    PASSWORD,
    USER,
    Images,
    Registry,
    ocish,
    one_line_error,
    run,
    start_registry,
)

from shim.registry import authfile

pytest_plugins = ["shim_fixtures"]


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(scope="module")
def tls_registry(work: Path) -> Iterator[tuple[Registry, Path]]:
    """An HTTPS registry (certificate from a CA made here) with htpasswd auth, and a certs.d
    directory for it holding the CA."""
    base = work / "registry-tls"
    base.mkdir()
    htpasswd = base / "htpasswd"
    htpasswd.write_text(run("htpasswd", "-Bbn", USER, PASSWORD).stdout)
    ca = make_ca(base)
    with start_registry(base, htpasswd, tls=make_server_cert(base, ca)) as reg:
        certs = base / "certs.d" / reg.host
        certs.mkdir(parents=True)
        (certs / "ca.crt").write_bytes(ca[0].read_bytes())
        yield reg, certs


@pytest.fixture(scope="module")
def token_registry(work: Path) -> Iterator[tuple[Registry, TokenServer]]:
    """A plain-HTTP registry with token auth, and its token server."""
    base = work / "registry-token"
    base.mkdir()
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
        "-subj", "/CN=ocish-test-token-signer", "-keyout", base / "token.key",
        "-out", base / "token.crt")
    tokens = TokenServer(base / "token.crt", base / "token.key", {USER: PASSWORD}).start()
    try:
        with start_registry(base, token=tokens.registry_config()) as reg:
            yield reg, tokens
    finally:
        tokens.stop()


def test_auth_file(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(scratch / "run"))
    assert authfile.write_path(None) == str(scratch / "run" / "containers" / "auth.json")
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert authfile.write_path(None) == f"/run/containers/{os.getuid()}/auth.json"
    env_file = scratch / "env" / "auth.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(env_file))
    assert authfile.write_path(None) == str(env_file)
    assert authfile.read_paths(None) == [str(env_file)]
    assert authfile.write_path("/x/a.json") == "/x/a.json"  # --authfile wins

    # a file Docker wrote: its other settings stay, its key forms are understood
    env_file.parent.mkdir()
    env_file.write_text(json.dumps({"auths": {"https://index.docker.io/v1/": {
        "auth": _auth("hub", "pw")}}, "credHelpers": {"x.io": "pass"}}))
    assert authfile.lookup(None, "docker.io", "library/busybox") == ("hub", "pw")
    path = authfile.store(None, "https://r.example:5000/", "u1", "p:1")
    authfile.store(None, "r.example:5000/team", "u2", "p2")
    assert path == str(env_file)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert sorted(os.listdir(env_file.parent)) == ["auth.json"]  # no temp file left
    data = json.loads(env_file.read_text())
    assert data["credHelpers"] == {"x.io": "pass"}
    assert data["auths"]["r.example:5000"] == {"auth": _auth("u1", "p:1")}
    # the longest key that covers the repository wins
    assert authfile.lookup(None, "r.example:5000", "team/app") == ("u2", "p2")
    assert authfile.lookup(None, "r.example:5000", "other/app") == ("u1", "p:1")
    assert authfile.lookup(None, "elsewhere:5000", "a") is None
    assert authfile.remove(None, "r.example:5000")
    assert not authfile.remove(None, "r.example:5000")
    assert authfile.lookup(None, "r.example:5000", "other/app") is None


def test_login_push_pull_tls_basic_auth(images: Images, tls_registry: tuple[Registry, Path],
                                        ocish_root: Path, scratch: Path) -> None:
    reg, certs = tls_registry
    auth_file = scratch / "auth.json"
    env = dict(os.environ, REGISTRY_AUTH_FILE=str(auth_file))
    tls = ("--cert-dir", str(certs))

    err = one_line_error(ocish(ocish_root, "login", "-u", USER, "-p", PASSWORD, reg.host,
                               check=False, env=env))
    assert "CERTIFICATE_VERIFY_FAILED" in err
    err = one_line_error(ocish(ocish_root, "login", *tls, "-u", USER, "-p", "wrong", reg.host,
                               check=False, env=env))
    assert err == f"ocish: login to {reg.host} failed: invalid username or password"
    assert not auth_file.exists()
    out = ocish(ocish_root, "login", *tls, "-u", USER, "-p", PASSWORD, reg.host, env=env).stdout
    assert out == "Login Succeeded!\n"
    assert json.loads(auth_file.read_text()) == {"auths": {reg.host: {
        "auth": _auth(USER, PASSWORD)}}}
    assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600

    ocish(ocish_root, "pull", "--tls-verify=false", "-q", images.ref())
    dest = f"{reg.host}/secure/busybox:latest"
    out = ocish(ocish_root, "push", *tls, images.ref(), dest, env=env).stdout
    assert out.count(": Pushed") == 3
    inspect = run("skopeo", "inspect", "--cert-dir", certs, "--creds", f"{USER}:{PASSWORD}",
                  f"docker://{dest}")
    assert json.loads(inspect.stdout)["Digest"] == images.digest

    other = scratch / "other-root"
    ocish(other, "pull", *tls, "--authfile", str(auth_file), "-q", dest)
    info = json.loads(ocish(other, "image", "inspect", dest).stdout)[0]
    assert info["RepoDigests"] == [f"{reg.host}/secure/busybox@{images.digest}"]

    out = ocish(ocish_root, "logout", reg.host, env=env).stdout
    assert out == f"Removed login credentials for {reg.host}\n"
    assert json.loads(auth_file.read_text()) == {"auths": {}}
    err = one_line_error(ocish(other, "pull", *tls, "-q", dest, check=False, env=env))
    assert "unauthorized" in err and "ocish login" in err
    err = one_line_error(ocish(ocish_root, "logout", reg.host, check=False, env=env))
    assert err == f"ocish: not logged in to {reg.host}"


def test_token_auth(images: Images, token_registry: tuple[Registry, TokenServer],
                    ocish_root: Path, scratch: Path) -> None:
    reg, tokens = token_registry
    env = dict(os.environ, REGISTRY_AUTH_FILE=str(scratch / "auth.json"))
    login = ("login", "--tls-verify=false", "-u", USER, "--password-stdin", reg.host)
    err = one_line_error(ocish(ocish_root, *login, input="wrong\n", check=False, env=env))
    assert err == f"ocish: login to {reg.host} failed: invalid username or password"
    del tokens.asked[:]
    assert ocish(ocish_root, *login, input=f"{PASSWORD}\n", env=env).stdout == \
        "Login Succeeded!\n"
    # the Bearer challenge led to the token server, with the account and no scope
    assert tokens.asked == [{"service": ["ocish-test-registry"], "account": [USER]}]

    ocish(ocish_root, "pull", "--tls-verify=false", "-q", images.ref())
    del tokens.asked[:]
    out = ocish(ocish_root, "push", "--tls-verify=false", images.ref(),
                f"{reg.host}/tok/busybox:v1", env=env).stdout
    assert out.count(": Pushed") == 3
    assert {s for q in tokens.asked for s in q["scope"]} == {"repository:tok/busybox:pull,push"}

    # a mount asks for a token that can also read the source repository
    del tokens.asked[:]
    mark = len(reg.requests())
    out = ocish(ocish_root, "push", "--tls-verify=false", images.ref(),
                f"{reg.host}/tok/copy:v1", env=env).stdout
    assert out.count("Mounted from tok/busybox") == 3
    assert ["repository:tok/copy:pull,push", "repository:tok/busybox:pull"] in \
        [q["scope"] for q in tokens.asked]
    posts = [r.status for r in reg.requests(mark) if r.method == "POST"]
    assert [s for s in posts if s != 401] == [201] * 4  # a 401 is a challenge, then the token

    del tokens.asked[:]
    other = scratch / "other-root"
    ocish(other, "pull", "--tls-verify=false", "-q", f"{reg.host}/tok/busybox:v1", env=env)
    assert {s for q in tokens.asked for s in q["scope"]} == {"repository:tok/busybox:pull"}
    inspect = run("skopeo", "inspect", "--tls-verify=false", "--creds", f"{USER}:{PASSWORD}",
                  f"docker://{reg.host}/tok/copy:v1")
    assert json.loads(inspect.stdout)["Digest"] == images.digest

    ocish(ocish_root, "logout", reg.host, env=env)
    assert authfile.lookup(str(scratch / "auth.json"), reg.host, "tok/busybox") is None
    err = one_line_error(ocish(scratch / "third-root", "pull", "--tls-verify=false",
                               f"{reg.host}/tok/busybox:v1", check=False, env=env))
    assert "401" in err and "ocish login" in err
