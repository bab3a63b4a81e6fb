"""ocish cp, diff, commit and export, for real, with ocirt and with runc as the runtime
(container_fixtures.oc); the container is hostile: its symlinks and ``..`` never lead out."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import uuid
from pathlib import Path

from container_support import CGROUP_PARENT, Ocish, wait_for
from shim_support import one_line_error

pytest_plugins = ["shim_fixtures", "container_fixtures"]


def _ready(oc: Ocish, name: str, tmp: Path) -> None:
    """Wait until the container has made its /ready (copying it out)."""
    wait_for(lambda: oc("cp", f"{name}:/ready", str(tmp / "ready"), check=False).returncode
             == 0, f"/ready in {name}")


def _tar_names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return tf.getnames()


def _raw(oc: Ocish, *args: str, stdin: bytes | None = None) -> bytes:
    res = subprocess.run([*oc.argv(), *args], input=stdin, capture_output=True, timeout=300,
                         check=False)
    assert res.returncode == 0, res.stderr
    return res.stdout


def _mounted(oc: Ocish) -> bool:
    return str(oc.root) in Path("/proc/self/mountinfo").read_text()


def test_cp_both_ways_running(oc: Ocish, tmp_path: Path) -> None:
    script = ("mkdir -p /d/sub && echo hi > /d/f && echo x > /d/sub/g && chown 5:6 /d/f && "
              "touch /ready && while [ ! -e /in/done ]; do sleep 0.1; done; "
              "cat /in/file /in/tree/inner; ls -n /in/file; ls /tmp/fromtar")
    oc.run("-d", "--name", "c", "IMAGE", "sh", "-c", script)
    _ready(oc, "c", tmp_path)
    # out: a file, a dir to a new name, a dir into a dir, a dir's contents
    oc("cp", "c:/d/f", str(tmp_path / "f"))
    assert (tmp_path / "f").read_text() == "hi\n"
    assert (tmp_path / "f").stat().st_uid == 0  # the copier's, as docker cp's
    oc("cp", "c:/d", str(tmp_path / "new"))
    assert (tmp_path / "new/sub/g").read_text() == "x\n"
    (tmp_path / "into").mkdir()
    oc("cp", "c:/d", str(tmp_path / "into"))
    assert (tmp_path / "into/d/f").read_text() == "hi\n"
    (tmp_path / "contents").mkdir()
    oc("cp", "c:/d/.", str(tmp_path / "contents"))
    assert sorted(os.listdir(tmp_path / "contents")) == ["f", "sub"]
    # out as a tar stream
    assert sorted(_tar_names(_raw(oc, "cp", "c:/d", "-"))) == ["d", "d/f", "d/sub", "d/sub/g"]
    # in: a file, a tree, a tar stream; the running container sees them, owned by root
    src = tmp_path / "src"
    src.mkdir()
    (src / "file").write_text("from host\n")
    os.chown(src / "file", 7, 8)
    (src / "tree").mkdir()
    (src / "tree/inner").write_text("inner\n")
    oc("cp", str(src / "file"), "c:/tmp/")
    oc("cp", "c:/tmp/file", str(tmp_path / "back"))
    assert (tmp_path / "back").read_text() == "from host\n"
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        info = tarfile.TarInfo("fromtar")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"tar"))
    _raw(oc, "cp", "-", "c:/tmp", stdin=tar.getvalue())
    oc("cp", str(src), "c:/in")  # a new name: /in holds src's content
    oc("cp", str(src / "file"), "c:/in/done")
    assert oc("wait", "c").stdout == "0\n"
    out = oc("logs", "c").stdout.splitlines()
    assert out[:2] == ["from host", "inner"]
    assert out[2].split()[2:4] == ["0", "0"]  # root's in the container, without -a
    assert out[3] == "/tmp/fromtar"
    oc("rm", "c")


def test_cp_archive_and_errors(oc: Ocish, tmp_path: Path) -> None:
    oc.run("-d", "--name", "c", "IMAGE", "sh", "-c", "touch /ready; sleep 1000")
    _ready(oc, "c", tmp_path)
    f = tmp_path / "owned"
    f.write_text("x")
    os.chown(f, 7, 8)
    oc("cp", "-a", str(f), "c:/owned")
    (tmp_path / "o").mkdir()
    oc("cp", "c:/owned", str(tmp_path / "o"))
    tar = _raw(oc, "cp", "c:/owned", "-")
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        m = tf.getmember("owned")
        assert (m.uid, m.gid) == (7, 8)
    # hard links stay links, symlinks stay symlinks unless -L
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "a").write_text("a\n")
    os.link(tree / "a", tree / "b")
    (tree / "s").symlink_to("a")
    oc("cp", str(tree), "c:/tree")
    oc("cp", "-L", str(tree / "s"), "c:/followed")
    with tarfile.open(fileobj=io.BytesIO(_raw(oc, "cp", "c:/tree", "-"))) as tf:
        kinds = {m.name: (m.type, m.linkname) for m in tf.getmembers()}
    assert kinds["tree/a"] == (tarfile.REGTYPE, "")
    assert kinds["tree/b"] == (tarfile.LNKTYPE, "tree/a")
    assert kinds["tree/s"] == (tarfile.SYMTYPE, "a")
    with tarfile.open(fileobj=io.BytesIO(_raw(oc, "cp", "c:/followed", "-"))) as tf:
        assert tf.getmember("followed").isreg()
    for args, message in [
        (["c:/nope", str(tmp_path)], "ocish: Could not find the file /nope in container c"),
        ([str(tmp_path / "nope"), "c:/x"], f"ocish: lstat {tmp_path / 'nope'}: no such file"),
        (["c:/etc", "c:/tmp"], "ocish: copying between containers is not supported"),
        ([str(f), str(tmp_path / "x")], "ocish: must specify at least one container source"),
        (["nosuch:/etc", str(tmp_path)], "ocish: No such container: nosuch"),
        (["c:/etc", str(f)], "ocish: cannot copy a directory to a file"),
        (["-", "c:/etc/passwd"], 'ocish: destination "c:/etc/passwd" must be a directory'),
    ]:
        res = oc("cp", *args, check=False, input="")
        assert res.returncode == 1
        assert one_line_error(res).startswith(message), res.stderr
    oc("rm", "-f", "c")


def test_cp_stopped_container(oc: Ocish, tmp_path: Path) -> None:
    oc.run("--name", "s", "IMAGE", "sh", "-c", "cat /g 2>/dev/null; echo data > /f")
    wait_for(lambda: not _mounted(oc), "the exited container's rootfs unmounted")
    oc("cp", "s:/f", str(tmp_path / "f"))
    assert (tmp_path / "f").read_text() == "data\n"
    (tmp_path / "g").write_text("copied in\n")
    oc("cp", str(tmp_path / "g"), "s:/g")
    assert not _mounted(oc)  # mounted for the copy only
    oc("start", "s")
    assert oc("wait", "s").stdout == "0\n"
    assert oc("logs", "s").stdout == "copied in\n"
    oc("rm", "s")


def test_cp_escapes_stay_inside(oc: Ocish, tmp_path: Path) -> None:
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "secret").write_text("host secret\n")
    before = sorted(os.listdir(host))
    etc_name = f"ocish-test-{uuid.uuid4().hex}"
    script = (f"ln -s {host} /abs; ln -s ../../../../../../../..{host} /rel; "
              "ln -s /etc /etclink; mkdir -p /d; ln -s ../../../../.. /d/up; "
              f"ln -s {host}/secret /hs; echo old > /etc/target; ln -s /etc/target /etc/tlink; "
              "touch /ready; sleep 1000")
    oc.run("-d", "--name", "c", "IMAGE", "sh", "-c", script)
    _ready(oc, "c", tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    # reading: through an absolute or a relative symlink, `..`, a symlinked dir component
    for src in ("c:/abs/secret", "c:/rel/secret", f"c:/../../../../..{host}/secret",
                f"c:/d/up{host}/secret"):
        res = oc("cp", src, str(out / "x"), check=False)
        assert "Could not find the file" in one_line_error(res)
    assert os.listdir(out) == []
    oc("cp", "c:/etclink/passwd", str(out / "passwd"))
    assert (out / "passwd").read_text() != Path("/etc/passwd").read_text()
    assert (out / "passwd").read_text().startswith("root:x:0:0:")
    # a symlink copied as such, -L follows it inside the container
    oc("cp", "c:/abs", str(out / "link"))
    assert os.readlink(out / "link") == str(host)
    res = oc("cp", "-L", "c:/abs", str(out / "followed"), check=False)
    assert "Could not find the file" in one_line_error(res)
    # writing: through the symlinks and `..`, a tar stream with `..` and symlink members
    src = tmp_path / "evil"
    src.write_text("evil\n")
    for dst in ("c:/abs/evil", "c:/rel/evil", f"c:/../../../..{host}/evil", "c:/abs/",
                f"c:/d/up{host}/evil", "c:/hs"):
        oc("cp", str(src), dst, check=False)
    oc("cp", str(src), f"c:/etclink/{etc_name}")
    # a symlink DEST is written through, inside the container
    oc("cp", str(src), "c:/etc/tlink")
    oc("cp", "c:/etc/target", str(out / "target"))
    assert (out / "target").read_text() == "evil\n"
    oc("cp", "c:/etc/tlink", str(out / "tlink"))
    assert os.readlink(out / "tlink") == "/etc/target"
    assert not Path(f"/etc/{etc_name}").exists()
    oc("cp", f"c:/etc/{etc_name}", str(out / "etc-file"))
    for members in ([(f"../../../../..{host}/evil1", "")],
                    [("lnk", str(host)), ("lnk/evil2", "")],
                    [("rlnk", f"../../../../../..{host}"), ("rlnk/evil3", "")]):
        tar = io.BytesIO()
        with tarfile.open(fileobj=tar, mode="w") as tf:
            for name, target in members:
                info = tarfile.TarInfo(name)
                if target:
                    info.type, info.linkname = tarfile.SYMTYPE, target
                    tf.addfile(info)
                else:
                    info.size = 5
                    tf.addfile(info, io.BytesIO(b"evil\n"))
        res = subprocess.run([*oc.argv(), "cp", "-", "c:/tmp"], input=tar.getvalue(),
                             capture_output=True, text=False, timeout=300, check=False)
        if res.returncode:  # a symlink to a dir the container lacks: not followed out
            assert res.stderr.decode().startswith("ocish: /tmp/") and \
                res.stderr.count(b"\n") == 1, res.stderr
    assert sorted(os.listdir(host)) == before
    assert (host / "secret").read_text() == "host secret\n"
    # what the `..` member became: a file inside the container
    names = _tar_names(_raw(oc, "export", "c"))
    assert f"tmp/{host.relative_to('/')}/evil1" in names
    oc("rm", "-f", "c")


def test_diff(oc: Ocish) -> None:
    script = ("echo a > /added; echo c >> /etc/passwd; rm /bin/ls; mkdir /tmp/newdir; "
              "rm -rf /home && mkdir /home")
    oc.run("--name", "d", "IMAGE", "sh", "-c", script)
    lines = oc("diff", "d").stdout.splitlines()
    assert lines == ["A /added", "C /bin", "D /bin/ls", "C /etc/passwd", "D /home",
                     "C /tmp", "A /tmp/newdir"]
    assert not [x for x in lines if x.split()[1].startswith(("/proc", "/sys", "/dev",
                                                             "/etc/hostname", "/etc/hosts",
                                                             "/etc/resolv.conf"))]
    assert lines.index("C /bin") < lines.index("D /bin/ls")
    oc("rm", "d")


def test_commit_runs_with_changes(oc: Ocish) -> None:
    oc.run("--name", "c", "-e", "FOO=bar", "IMAGE", "sh", "-c",
           "echo hello > /hello; rm /bin/vi; mkdir -p /w")
    res = oc("commit", "-a", "Ann <ann@example.com>", "-m", "my change",
             "-c", 'CMD ["sh", "-c", "cat /hello; echo $FOO; pwd; ls /bin/vi"]',
             "-c", "WORKDIR /w", "c", "committed:v1")
    image_id = res.stdout.strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    run = oc("run", "--rm", "--cgroup-parent", CGROUP_PARENT, "--pull", "never",
             "committed:v1", check=False)
    assert run.stdout.splitlines() == ["hello", "bar", "/w"]
    assert run.returncode == 1  # /bin/vi is deleted in the new layer
    img = oc.inspect("committed:v1")
    assert img["Id"] == image_id
    assert img["Author"] == "Ann <ann@example.com>"
    base_layers = len(oc.inspect(oc.image)["RootFS"]["Layers"])  # type: ignore[index]
    assert len(img["RootFS"]["Layers"]) == base_layers + 1  # type: ignore[index]
    hist = oc("history", "--no-trunc", "committed:v1").stdout
    assert "my change" in hist
    oc("rm", "c")


def test_export(oc: Ocish, tmp_path: Path) -> None:
    oc.run("--name", "e", "IMAGE", "sh", "-c", "echo x > /exported; rm /bin/ls")
    names = _tar_names(_raw(oc, "export", "e"))
    assert "exported" in names and "bin/busybox" in names and "etc/passwd" in names
    assert "bin/ls" not in names and not [n for n in names if n.startswith(("/", "./"))]
    target = tmp_path / "target"
    target.write_text("untouched\n")
    (tmp_path / "link").symlink_to(target)
    oc("export", "-o", str(tmp_path / "link"), "e")
    assert target.read_text() == "untouched\n"
    assert not (tmp_path / "link").is_symlink()
    with tarfile.open(tmp_path / "link") as tf:
        assert tf.extractfile("exported").read() == b"x\n"  # type: ignore[union-attr]
    oc("rm", "e")


def test_commit_running_paused(oc: Ocish, tmp_path: Path) -> None:
    oc.run("-d", "--name", "r", "IMAGE", "sh", "-c", "echo live > /live; touch /ready; "
           "while sleep 0.1; do [ -e /ping ] && mv /ping /pong; done")
    _ready(oc, "r", tmp_path)
    oc("commit", "r", "live:1")  # paused meanwhile (the default), then resumed:
    oc("cp", str(tmp_path / "ready"), "r:/ping")
    wait_for(lambda: oc("cp", "r:/pong", str(tmp_path), check=False).returncode == 0,
             "an answer from the resumed container")
    oc("commit", "--pause=false", "-c", "CMD cat /live", "r", "live:2")
    run = oc("run", "--rm", "--cgroup-parent", CGROUP_PARENT, "--pull", "never", "live:2")
    assert run.stdout == "live\n"
    oc("rm", "-f", "r")


def test_cp_symlinks_swapped_during_copy(oc: Ocish, tmp_path: Path) -> None:
    host = tmp_path / "hostdir"
    host.mkdir()
    (host / "secret").write_text("host secret\n")
    # /sw is, in turn, a directory and a symlink (absolute, then relative) to the host's dir
    script = (f"touch /ready; while :; do mkdir /sw.d; echo inside > /sw.d/secret; "
              f"mv -T /sw.d /sw; sleep 0.05; rm -rf /sw; ln -s {host} /sw; rm /sw; "
              f"ln -s ../../../../../../..{host} /sw; rm /sw; done")
    oc.run("-d", "--name", "c", "IMAGE", "sh", "-c", script)
    _ready(oc, "c", tmp_path)
    src = tmp_path / "evil"
    src.write_text("evil\n")
    out = tmp_path / "out"
    out.mkdir()
    for i in range(15):
        oc("cp", str(src), f"c:/sw/evil{i}", check=False)
        oc("cp", "c:/sw/secret", str(out / f"s{i}"), check=False)
    assert sorted(os.listdir(host)) == ["secret"]
    assert (host / "secret").read_text() == "host secret\n"
    assert all(f.read_text() == "inside\n" for f in out.iterdir())
    oc("rm", "-f", "c")
