"""ocish history, image prune and system df (checked against images and the store), and --help
on every command this work added."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from archive_support import aligned, inspect
from shim_support import OCISH, Images, assert_store_sound, ocish, run

from shim.units import human_size

pytest_plugins = ["shim_fixtures", "archive_fixtures"]

PULL = ("pull", "--tls-verify=false", "-q")
LONG = "/bin/sh -c #(nop) " + "a long command line that goes on and on " * 3


def _snapshot_sizes(root: Path) -> dict[str, int]:
    out = {}
    for snap in (root / "snapshots").iterdir():
        if (snap / "info.json").is_file():
            out[snap.name] = int(json.loads((snap / "info.json").read_text())["size"])
    return out


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _import(root: Path, data: bytes, *name: str) -> str:
    res = subprocess.run([str(OCISH), "--root", str(root), "import", "-", *name], input=data,
                         capture_output=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.decode().strip()


def _df(root: Path) -> dict[str, dict[str, str]]:
    rows = [json.loads(line) for line in ocish(root, "system", "df", "--format", "json")
            .stdout.splitlines()]
    return {r["Type"]: r for r in rows}


def test_history(layout: Path, ocish_root: Path, tmp: Path) -> None:
    run("umoci", "config", "--image", f"{layout}:base", "--tag", "hist",
        "--config.label", "made=by-test", "--history.created_by", LONG,
        "--history.comment", "a comment")
    archive = tmp / "hist.tar"
    run("skopeo", "copy", f"oci:{layout}:hist", f"oci-archive:{archive}:docker.io/test/hist:1")
    ocish(ocish_root, "load", "-i", str(archive))
    info = inspect(ocish_root, "test/hist:1")
    config = json.loads(run("skopeo", "inspect", "--config", f"oci:{layout}:hist").stdout)
    history = list(reversed(config["history"]))
    lowers = str(info["GraphDriver"]["Data"]["LowerDir"]).split(":")  # type: ignore[index]
    sizes = _snapshot_sizes(ocish_root)
    layer_sizes = [sizes[Path(p).parent.name] for p in lowers]  # top first
    want_sizes = []
    for h in history:
        want_sizes.append(0 if h.get("empty_layer") else layer_sizes.pop(0))
    assert layer_sizes == []

    out = ocish(ocish_root, "history", "test/hist:1").stdout
    rows = aligned(out, ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"])
    assert len(rows) == len(history)
    assert [r[0] for r in rows] == [str(info["Id"])[7:19]] + ["<missing>"] * (len(rows) - 1)
    assert rows[0][2] == LONG[:44] + "…" and rows[0][4] == "a comment"
    assert [r[3] for r in rows] == [human_size(s) for s in want_sizes]
    assert all(r[1].endswith(" ago") for r in rows)

    rows = [json.loads(line) for line in
            ocish(ocish_root, "image", "history", "--no-trunc", "--format", "json",
                  "test/hist:1").stdout.splitlines()]
    assert [r["ID"] for r in rows] == [info["Id"]] + ["<missing>"] * (len(rows) - 1)
    assert [r["CreatedBy"] for r in rows] == [h.get("created_by", "") for h in history]
    assert [r["Comment"] for r in rows] == [h.get("comment", "") for h in history]
    assert set(rows[0]) == {"ID", "CreatedAt", "CreatedSince", "CreatedBy", "Size", "Comment"}
    raw = ocish(ocish_root, "history", "-H=false", "--format", "json", "test/hist:1").stdout
    assert [json.loads(line)["Size"] for line in raw.splitlines()] == [str(s) for s in
                                                                        want_sizes]
    table = ocish(ocish_root, "history", "--human=false", "test/hist:1").stdout
    assert aligned(table, ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"])[0][1] == \
        rows[0]["CreatedAt"]
    assert ocish(ocish_root, "history", "-q", "test/hist:1").stdout.split() == \
        [str(info["Id"])[7:19]] + ["<missing>"] * (len(rows) - 1)
    # an imported image: one row, Docker's comment
    image_id = _import(ocish_root, _tar({"f": b"x"}))
    rows = aligned(ocish(ocish_root, "history", image_id).stdout,
                   ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"])
    assert rows == [[image_id[7:19], rows[0][1], "", "1B", "Imported from -"]]


def test_prune_removes_dangling_then_all(images: Images, ocish_root: Path) -> None:
    ocish(ocish_root, *PULL, images.ref())
    kept = str(inspect(ocish_root, images.ref())["Id"])
    moved = _import(ocish_root, _tar({"one": b"1" * 1000}), "test/moved:1")
    _import(ocish_root, _tar({"two": b"2" * 2000}), "test/moved:1")  # the tag moves on
    untagged = _import(ocish_root, _tar({"three": b"3" * 3000}))
    assert {moved, untagged} <= set(ocish(ocish_root, "images", "-q", "--no-trunc").stdout
                                    .split())
    assert ocish(ocish_root, "images").stdout.count("<none>") == 4  # two rows, two columns

    res = subprocess.run([str(OCISH), "--root", str(ocish_root), "image", "prune"],
                         input="n\n", capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "WARNING! This will remove all dangling images." in \
        res.stdout
    assert len(ocish(ocish_root, "images", "-q").stdout.split()) == 4

    sizes = _snapshot_sizes(ocish_root)
    out = ocish(ocish_root, "image", "prune", "-f").stdout
    lines = out.splitlines()
    after = _snapshot_sizes(ocish_root)
    assert lines[0] == "Deleted Images:"
    assert {f"deleted: {moved}", f"deleted: {untagged}"} <= set(lines)
    assert lines[-1] == "Total reclaimed space: " + human_size(
        sum(s for c, s in sizes.items() if c not in after))
    assert {f"deleted: sha256:{c}" for c in sizes if c not in after} <= set(lines)
    blobs = {p.name for p in (ocish_root / "blobs" / "sha256").iterdir()}
    assert moved[7:] not in blobs and untagged[7:] not in blobs and kept[7:] in blobs
    assert len(ocish(ocish_root, "images", "-q").stdout.split()) == 2
    assert_store_sound(ocish_root)
    assert ocish(ocish_root, "image", "prune", "-f").stdout == "Total reclaimed space: 0B\n"

    total = sum(after.values())
    df = _df(ocish_root)["Images"]
    assert df["Size"] == human_size(total) and df["Reclaimable"] == f"{human_size(total)} (100%)"
    res = subprocess.run([str(OCISH), "--root", str(ocish_root), "image", "prune", "-a"],
                         input="y\n", capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "remove all images without at least one container" in res.stdout
    assert f"untagged: {images.ref()}" in res.stdout and f"deleted: {kept}" in res.stdout
    assert res.stdout.endswith(f"Total reclaimed space: {human_size(total)}\n")
    assert ocish(ocish_root, "images", "-q").stdout == ""
    assert list((ocish_root / "blobs" / "sha256").iterdir()) == []
    assert _snapshot_sizes(ocish_root) == {}


def test_system_df_agrees_with_images(images: Images, ocish_root: Path) -> None:
    empty = ocish(ocish_root, "system", "df").stdout
    assert aligned(empty, ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]) == [
        ["Images", "0", "0", "0B", "0B"], ["Containers", "0", "0", "0B", "0B"],
        ["Local Volumes", "0", "0", "0B", "0B"], ["Build Cache", "0", "0", "0B", "0B"]]
    base, big = images.ref(), images.ref(images.big_repo)
    ocish(ocish_root, *PULL, base)
    ocish(ocish_root, *PULL, big)
    listed = {f"{r['Repository']}:{r['Tag']}": r for r in
              map(json.loads, ocish(ocish_root, "images", "--format", "json").stdout
                  .splitlines())}
    sizes = _snapshot_sizes(ocish_root)
    total = sum(sizes.values())  # big holds base's three layers and one more
    assert listed[big]["Size"] == human_size(total)

    rows = aligned(ocish(ocish_root, "system", "df").stdout,
                   ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"])
    assert rows[0] == ["Images", "2", "0", human_size(total), f"{human_size(total)} (100%)"]
    assert _df(ocish_root)["Images"] == {"Type": "Images", "TotalCount": "2", "Active": "0",
                                         "Size": human_size(total),
                                         "Reclaimable": f"{human_size(total)} (100%)"}

    verbose = ocish(ocish_root, "system", "df", "-v").stdout
    assert verbose.startswith("Images space usage:\n\n")
    table = verbose.split("\n\n")[1]
    header = ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE", "SHARED SIZE", "UNIQUE SIZE",
              "CONTAINERS"]
    by_name = {f"{r[0]}:{r[1]}": r for r in aligned(table, header)}
    base_size = listed[base]["Size"]
    assert by_name[base][4:] == [base_size, base_size, "0B", "0"]
    unique = total - sum(sizes[Path(p).parent.name] for p in str(
        inspect(ocish_root, base)["GraphDriver"]["Data"]["LowerDir"]).split(":"))  # type: ignore[index]
    assert by_name[big][4:] == [listed[big]["Size"], base_size, human_size(unique), "0"]
    assert "Build cache usage: 0B" in verbose


@pytest.mark.parametrize("command", [
    ["save"], ["load"], ["import"], ["history"], ["image", "save"], ["image", "load"],
    ["image", "import"], ["image", "export"], ["image", "history"], ["image", "prune"],
    ["system", "df"], ["system"],
])
def test_help(command: list[str], tmp: Path) -> None:
    res = ocish(tmp / "root", *command, "--help")
    assert res.stdout.startswith(f"usage: ocish {' '.join(command)}"), res.stdout
    flags = {"save": "--format", "load": "--input", "import": "--change", "export": "--output",
             "history": "--no-trunc", "prune": "--all", "df": "--verbose", "system": "df"}
    assert flags[command[-1]] in res.stdout
