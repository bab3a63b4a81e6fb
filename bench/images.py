"""ocish's image side against the tools it stands beside: what `make bench-images` prints.

    .venv/bin/python bench/images.py [-n ROUNDS] [--layers N] [--mib TOTAL] [--small-files K]
                                     [--images N] [--quick] [--json FILE]

Set up once, in a temp dir: an OCI layout built with umoci, two images on busybox-static, their
layers added with `umoci raw add-layer` (so gzip-compressed by umoci):

- `random`: N layers of random (incompressible) data, TOTAL MiB in all, each one file, plus K
  small text files if asked;
- `files`: a layer shaped like a distribution's base (TREE files in nested directories, ~10%
  symlinks, a few hard links, sizes from a few bytes to ~1 MiB, mostly small, compressible
  content: text and repetitive binary) and two application layers of TREE/4 files each.

A docker-registry on a free 127.0.0.1 port, both images pushed there with skopeo.  Then, for
each image, rounds alternating (A B, B A, A B, ...):

- pull: `ocish pull` into an empty storage root vs `skopeo copy docker://... oci:DIR`, both
  with TLS verification off (plain HTTP); MB/s of the image's compressed bytes.  ocish also
  unpacks every layer into its snapshot (and checks both digests); skopeo only stores blobs.
- unpack: each layer blob unpacked into an empty dir by a whole process: ocish's unpacker
  (shim.storage.unpack.unpack, started as the installed `ocish` command starts: its interpreter, -I -S,
  its import path; ocish has no command that only unpacks) vs GNU `tar -xzf BLOB -C DIR` (as
  root: owners, modes and mtimes kept); seconds for all layers, spawn to exit.
- images: `ocish images` wall time (interpreter start included) with IMAGES images in the
  store, and with an empty store, against the 100 ms target.  The images are one-layer
  images of busybox with distinct configs, put into the registry through its HTTP API.

Everything goes at the end, also on an error or Ctrl-C: the registry (by pid), the temp dir.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchlib import INSTALLED_BIN, BenchError, machine

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "shim"))
from shim_support import MKROOTFS, Registry, start_registry  # noqa: E402

SKOPEO, UMOCI, TAR = "/usr/bin/skopeo", "/usr/bin/umoci", "/bin/tar"
OCISH = INSTALLED_BIN / "ocish"
TARGETS = {"pull": 0.95, "unpack": 1.1, "images_ms": 100.0}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def sh(*cmd: str | Path) -> str:
    """Run a setup step; a failure ends the benchmark with its last stderr line."""
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no stderr)"])[-1]
        raise BenchError(f"{Path(str(cmd[0])).name} {cmd[1]} exited {done.returncode}: {last}")
    return done.stdout


def timed(*cmd: str | Path) -> float:
    """Seconds of one command, from spawn to exit (its output is thrown away)."""
    os.sync()  # the previous round's dirty pages are written back before, not during
    start = time.perf_counter()
    sh(*cmd)
    return time.perf_counter() - start


def random_layer(path: Path, index: int, size: int, small_files: int, rng: random.Random
                 ) -> None:
    """An uncompressed layer tar: one random file of *size* bytes and *small_files* small text
    files (0.1-10 KB)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        top = tarfile.TarInfo(f"data{index}")
        top.type, top.mode, top.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
        tf.addfile(top)
        big = tarfile.TarInfo(f"data{index}/big.bin")
        big.size, big.mode, big.mtime = size, 0o644, 1_700_000_000
        tf.addfile(big, io.BytesIO(rng.randbytes(size)))
        words = [rng.randbytes(6).hex() for _ in range(500)]
        for i in range(small_files):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(50, 1500))).encode()
            small = tarfile.TarInfo(f"data{index}/small/f{i:03d}.txt")
            small.size, small.mode, small.mtime, small.uid = len(text), 0o640, 1_700_000_000, 1000
            tf.addfile(small, io.BytesIO(text))


def corpus(rng: random.Random, size: int) -> bytes:
    """*size* bytes that compress about as real files do (gzip: ~3x): 64 KiB blocks of text
    made of a 2000-word vocabulary alternating with blocks of repetitive binary tokens."""
    words = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz_", k=rng.randint(2, 12)))
             for _ in range(2000)]
    tokens = [rng.randbytes(rng.randint(4, 16)) for _ in range(256)]
    out = bytearray()
    while len(out) < size:
        if len(out) // 65536 % 2 == 0:
            out += " ".join(rng.choices(words, k=9000)).encode()[:65536]
        else:
            out += b"".join(rng.choices(tokens, k=6500))[:65536]
    return bytes(out[:size])


def tree_layer(path: Path, top: str, files: int, rng: random.Random, text: bytes) -> None:
    """An uncompressed layer tar shaped like a distribution's: *files* regular files under
    *top* in ~files/12 nested directories, sizes log-normal (median ~1.5 KB, capped at 1 MiB)
    cut from *text*, 20% executable, some owned by uid 1000; files/10 symlinks (absolute and
    relative, a few dangling) and files/100 hard links."""
    def info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        m = tarfile.TarInfo(name)
        m.type, m.mode, m.mtime = kind, mode, 1_700_000_000
        return m

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        dirs = [top]
        tf.addfile(info(top, tarfile.DIRTYPE, 0o755))
        for i in range(max(1, files // 12)):
            d = f"{rng.choice(dirs)}/d{i:04d}"
            dirs.append(d)
            tf.addfile(info(d, tarfile.DIRTYPE, 0o755))
        regular = []
        for i in range(files):
            name = f"{rng.choice(dirs)}/f{i:05d}{rng.choice(['', '.so', '.py', '.txt', '.h'])}"
            size = min(int(rng.lognormvariate(7.3, 1.8)), 1 << 20)
            start = rng.randrange(len(text) - size)
            m = info(name, tarfile.REGTYPE, 0o755 if rng.random() < 0.2 else 0o644)
            m.size, m.uid = size, 1000 if rng.random() < 0.05 else 0
            tf.addfile(m, io.BytesIO(text[start:start + size]))
            regular.append(name)
        for i in range(files // 10):
            d = rng.choice(dirs)
            m = info(f"{d}/l{i:05d}", tarfile.SYMTYPE, 0o777)
            target = rng.choice(regular)
            m.linkname = ("/" + target if i % 2 else "../" * d.count("/") + "../" + target
                          ) if i % 20 else "/no/such/file"
            tf.addfile(m)
        for i in range(files // 100):
            m = info(f"{rng.choice(dirs)}/h{i:05d}", tarfile.LNKTYPE, 0o644)
            m.linkname = rng.choice(regular)
            tf.addfile(m)


def build_layout(work: Path, layers: int, total_mib: int, small_files: int, tree: int
                 ) -> Path:
    """The OCI layout: tag `small` (busybox), tag `random` (busybox + the random layers) and tag
    `files` (busybox + the three tree layers: TREE files, then TREE/4 twice)."""
    lay = work / "layout"
    sh(UMOCI, "init", "--layout", lay)
    sh(UMOCI, "new", "--image", f"{lay}:small")
    bundle = work / "bundle"
    sh(UMOCI, "unpack", "--image", f"{lay}:small", bundle)
    sh(MKROOTFS, bundle / "rootfs")
    sh(UMOCI, "repack", "--image", f"{lay}:small", bundle)
    shutil.rmtree(bundle)
    sh(UMOCI, "config", "--image", f"{lay}:small", "--tag", "random")
    rng = random.Random(7)
    weights = [i + 2 for i in range(layers)]  # unequal sizes, as real layers are
    for i, w in enumerate(weights):
        tar = work / f"layer{i}.tar"
        random_layer(tar, i, total_mib * (1 << 20) * w // sum(weights), small_files, rng)
        sh(UMOCI, "raw", "add-layer", "--image", f"{lay}:random", tar)
        tar.unlink()
    sh(UMOCI, "config", "--image", f"{lay}:small", "--tag", "files")
    text = corpus(rng, 8 << 20)
    for i, (top, count) in enumerate((("usr", tree), ("opt/app", tree // 4),
                                      ("srv/site", tree // 4))):
        tar = work / f"tree{i}.tar"
        tree_layer(tar, top, count, rng, text)
        sh(UMOCI, "raw", "add-layer", "--image", f"{lay}:files", tar)
        tar.unlink()
    return lay


def unpacker(work: Path) -> Path:
    """A command `UNPACKER BLOB DIR` running ocish's unpacker in a process started as the
    installed `ocish` command is: the launcher's own lines (its interpreter with -I -S, its
    import path), then shim.storage.unpack.unpack instead of ocish's main.  ocish has no command that
    only unpacks a layer (pull and load also store it), and timing the function inside this
    benchmark would leave out the interpreter start that tar's side pays."""
    lines = OCISH.read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if line.startswith("from shim.__main__"))
    path = work / "ocish-unpack"
    path.write_text("\n".join([*lines[:cut], "from shim.storage.unpack import unpack",
                               "with open(sys.argv[1], 'rb') as f:",
                               "    unpack(f, sys.argv[2])", ""]))
    path.chmod(0o755)
    return path


def many_images(reg: Registry, repo: str, count: int) -> list[str]:
    """*count* images in *repo*, tags t000...: the busybox image's manifest with new configs."""
    body, _ = reg.manifest(repo, "latest")
    manifest = json.loads(body)
    cdigest = manifest["config"]["digest"]
    config = json.loads(reg._req("GET", f"/v2/{repo}/blobs/{cdigest}")[0])
    refs = []
    for i in range(count):
        config.setdefault("config", {})["Labels"] = {"bench.n": str(i)}
        desc = reg.put_blob(repo, json.dumps(config).encode())
        manifest["config"] = {**manifest["config"], **desc}
        reg.put_manifest(repo, f"t{i:03d}", json.dumps(manifest).encode(), OCI_MANIFEST)
        refs.append(f"{reg.host}/{repo}:t{i:03d}")
    return refs


class Samples:
    """Kept values per (figure, label)."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, list[float]]] = {}

    def add(self, figure: str, label: str, value: float) -> None:
        self.data.setdefault(figure, {}).setdefault(label, []).append(value)

    def median(self, figure: str, label: str) -> float:
        return statistics.median(self.data[figure][label])


def alternate(rounds: int, warmup: int, a: Callable[[], float], b: Callable[[], float],
              figure: str, labels: tuple[str, str], s: Samples) -> None:
    """Run a and b *rounds* + *warmup* times, A B then B A ...; keep all but the warmup."""
    for r in range(warmup + rounds):
        order = [(labels[0], a), (labels[1], b)]
        for label, fn in order if r % 2 == 0 else reversed(order):
            value = fn()
            if r >= warmup:
                s.add(figure, label, value)
        progress(f"{figure}: round {r + 1}/{warmup + rounds}")


def progress(msg: str) -> None:
    if sys.stderr.isatty():
        print(f"\r{msg:<50}", end="", file=sys.stderr, flush=True)


def blob_sizes(lay: Path, tag: str) -> tuple[int, list[Path]]:
    """(compressed bytes of the manifest, config and layers; the layer blob paths)."""
    index = json.loads((lay / "index.json").read_text())
    desc = next(m for m in index["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
    blobs = lay / "blobs" / "sha256"
    manifest = json.loads((blobs / desc["digest"][7:]).read_bytes())
    total = desc["size"] + manifest["config"]["size"] + sum(d["size"] for d in manifest["layers"])
    return total, [blobs / d["digest"][7:] for d in manifest["layers"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=5, help="timed rounds (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=1, help="discarded rounds (default: %(default)s)")
    ap.add_argument("--layers", type=int, default=5, help="random layers (default: %(default)s)")
    ap.add_argument("--mib", type=int, default=200,
                    help="MiB of random data in them (default: %(default)s)")
    ap.add_argument("--small-files", type=int, default=0,
                    help="small text files in each random layer too (default: %(default)s)")
    ap.add_argument("--tree", type=int, default=3000,
                    help="files in the base layer of the many-files image (default: "
                         "%(default)s; its two other layers have a quarter each)")
    ap.add_argument("--images", type=int, default=100,
                    help="images in the store for `ocish images` (default: %(default)s)")
    ap.add_argument("--images-rounds", type=int, default=20,
                    help="timed `ocish images` runs (default: %(default)s)")
    ap.add_argument("--quick", action="store_true", help="-n 3 --mib 100 --tree 1000")
    ap.add_argument("--json", metavar="FILE", help="also write every sample here")
    args = ap.parse_args()
    if args.quick:
        args.n, args.mib, args.tree = 3, 100, 1000
    if os.geteuid() != 0:
        sys.exit("images.py: needs root (ocish keeps owners and device nodes)")
    for tool in (SKOPEO, UMOCI, TAR, "/usr/bin/docker-registry", str(OCISH)):
        if not os.access(tool, os.X_OK):
            sys.exit(f"images.py: not found or not executable: {tool} "
                     "(make test-install, make deps)")
    t_start = time.monotonic()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    work = Path(tempfile.mkdtemp(prefix="ocish-bench-"))
    reg: Registry | None = None
    s = Samples()
    sizes: dict[str, tuple[int, int]] = {}
    try:
        progress("building the images")
        lay = build_layout(work, args.layers, args.mib, args.small_files, args.tree)
        unpack_cmd = unpacker(work)
        progress("starting the registry")
        reg = start_registry(work / "registry")
        small = f"{reg.host}/bench/small:latest"
        sh(SKOPEO, "copy", "--dest-tls-verify=false", f"oci:{lay}:small", f"docker://{small}")
        dest = work / "unpacked"
        for image in IMAGES:
            total, layer_blobs = blob_sizes(lay, image)
            sizes[image] = total, len(layer_blobs)
            ref = f"{reg.host}/bench/{image}:latest"
            sh(SKOPEO, "copy", "--dest-tls-verify=false", f"oci:{lay}:{image}", f"docker://{ref}")

            def ocish_pull(ref: str = ref, total: int = total) -> float:
                root = work / "ocish-root"
                took = timed(OCISH, "--root", root, "pull", "--tls-verify=false", "-q", ref)
                shutil.rmtree(root)
                return total / 1e6 / took

            def skopeo_pull(ref: str = ref, total: int = total) -> float:
                out = work / "skopeo-dest"
                took = timed(SKOPEO, "copy", "--src-tls-verify=false", f"docker://{ref}",
                             f"oci:{out}:latest")
                shutil.rmtree(out)
                return total / 1e6 / took

            alternate(args.n, args.warmup, ocish_pull, skopeo_pull, f"pull {image}",
                      ("ocish", "skopeo"), s)

            def each_layer(*cmd: str | Path, blobs: list[Path] = layer_blobs) -> float:
                """Seconds of `cmd BLOB...` for every layer, each into a fresh empty dir."""
                took = 0.0
                for blob in blobs:
                    dest.mkdir()
                    took += timed(*[blob if c == "BLOB" else c for c in cmd])
                    shutil.rmtree(dest)
                return took

            alternate(args.n, args.warmup, lambda: each_layer(unpack_cmd, "BLOB", dest),
                      lambda: each_layer(TAR, "-xzf", "BLOB", "-C", dest), f"unpack {image}",
                      ("ocish", "tar"), s)

        progress(f"pulling {args.images} images")
        root = work / "images-root"
        empty = work / "empty-root"
        for ref in many_images(reg, "bench/small", args.images):
            sh(OCISH, "--root", root, "pull", "--tls-verify=false", "-q", ref)
        listed = sh(OCISH, "--root", root, "images").splitlines()
        if len(listed) != args.images + 1:
            raise BenchError(f"ocish images listed {len(listed) - 1} images, not {args.images}")
        for r in range(args.images_rounds + 2):
            for label, where in (("images", root), ("empty", empty)):
                took = timed(OCISH, "--root", where, "images") * 1000
                if r >= 2:
                    s.add("images_ms", label, took)
        progress("")
    except BenchError as exc:
        sys.exit(f"images.py: {exc}")
    finally:
        if reg is not None:
            reg.stop()
        shutil.rmtree(work, ignore_errors=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    facts = machine() | {"rounds": args.n, "warmup": args.warmup, "load": load,
                         "load_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
                         "total_s": round(time.monotonic() - t_start)}
    report(s, facts, args, sizes)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": facts, "args": vars(args), "sizes": sizes, "samples": s.data},
                      f, indent=1)


# (figure prefix, the other side, unit, row text, digits)
ROWS = [("pull", "skopeo", "MB/s", "pull, vs skopeo copy", 1),
        ("unpack", "tar", "s", "unpack, vs tar -xzf", 3)]
IMAGES = ("random", "files")


def report(s: Samples, facts: dict[str, object], args: argparse.Namespace,
           sizes: dict[str, tuple[int, int]]) -> None:
    print(" | ".join(f"{k}: {v}" for k, v in facts.items() if k != "cgroup"))
    print(f"skopeo: {sh(SKOPEO, '--version').strip()} | tar: "
          f"{sh(TAR, '--version').splitlines()[0]}")
    what = {"random": f"busybox + {args.layers} layers of random data ({args.mib} MiB, "
                      f"{args.small_files} small files each)",
            "files": f"busybox + 3 layers of {args.tree}, {args.tree // 4}, {args.tree // 4} "
                     f"files (+10% symlinks, 1% hard links), compressible"}
    for image in IMAGES:
        total, layers = sizes[image]
        print(f"image {image}: {what[image]}: {layers} layers, {total / 1e6:.1f} MB compressed")

    def cell(figure: str, label: str, digits: int) -> str:
        vals = s.data[figure][label]
        return f"{statistics.median(vals):.{digits}f} ({min(vals):.{digits}f}-{max(vals):.{digits}f})"

    print()
    head = f"median (min-max) of {args.n} rounds"
    print(f"{head:<36}{'unit':>6}{'ocish':>22}{'other':>22}{'ratio':>8}")
    for prefix, other, unit, text, digits in ROWS:
        for image in IMAGES:
            figure = f"{prefix} {image}"
            ratio = s.median(figure, "ocish") / s.median(figure, other)
            print(f"{text + ', ' + image:<36}{unit:>6}{cell(figure, 'ocish', digits):>22}"
                  f"{cell(figure, other, digits):>22}{ratio:>7.2f}x")
    for label, text in (("images", f"ocish images, {args.images} images"),
                        ("empty", "ocish images, empty store")):
        print(f"{text:<36}{'ms':>6}{cell('images_ms', label, 1):>22}"
              f"   ({args.images_rounds} runs)")
    print()
    print("targets (ocish)")
    for image in IMAGES:
        pull = s.median(f"pull {image}", "ocish") / s.median(f"pull {image}", "skopeo")
        unp = s.median(f"unpack {image}", "ocish") / s.median(f"unpack {image}", "tar")
        for text, value, ok in (
                (f"pull >= {TARGETS['pull']}x skopeo's throughput, {image}", f"{pull:.2f}x",
                 pull >= TARGETS["pull"]),
                (f"unpack <= {TARGETS['unpack']}x tar's time, {image}", f"{unp:.2f}x",
                 unp <= TARGETS["unpack"])):
            print(f"  {text:<50}{value:>10}  {'met' if ok else 'MISSED'}")
    full = s.median("images_ms", "images")
    text = f"ocish images < {TARGETS['images_ms']:.0f} ms with {args.images} images"
    print(f"  {text:<50}{f'{full:.1f} ms':>10}  {'met' if full < TARGETS['images_ms'] else 'MISSED'}")


if __name__ == "__main__":
    main()
