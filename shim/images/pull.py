"""Pulling an image: manifest (via the index if any), config, layers, snapshots, records."""

from __future__ import annotations

import sys
import threading
from functools import partial

from ..errors import OcishError
from ..registry.client import INDEX_TYPES, RegistryClient
from ..storage.root import Storage
from ..threads import run_all
from . import platforms
from .install import (
    Parts,
    descriptor,
    manifest_parts,
    missing_layers,
    parse_json,
    parts,
    record,
    unpack_layer,
)
from .reference import Reference

TYPE_CHECKING = False  # not typing's: push imports this module for every command
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

# the names this module had before the checks moved to install.py (push.py imports them)
_json = parse_json
_descriptor = descriptor


class Progress:
    """Docker-like progress, one thread at a time. On a terminal each layer has a line that is
    redrawn in place (``abc123def456: Downloading [=====>     ]  12.3MB/45.6MB``); otherwise
    each step is a plain line of its own (``abc123def456: Pull complete``), without bars."""

    BAR = 50

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self.lock = threading.Lock()
        isatty = getattr(out, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.rows: dict[str, int] = {}  # layer -> its line, counted from the first one written
        self.written = 0                # lines written so far
        self.drawn: dict[str, int] = {}  # layer -> the length of the bar drawn last

    def line(self, text: str) -> None:
        if self.out is None:
            return
        with self.lock:
            self.out.write(text + "\n")
            self.out.flush()
            self.written += 1

    def layer(self, digest: str, status: str) -> None:
        key = digest.split(":", 1)[-1][:12]
        if not self.tty or self.out is None:
            self.line(f"{key}: {status}")
            return
        with self.lock:
            row = self.rows.get(key)
            if row is None:
                self.rows[key] = self.written
                self.out.write(f"{key}: {status}\n")
                self.written += 1
            else:  # up to its line, rewrite it, back down to where the next line goes
                up = self.written - row
                self.out.write(f"\x1b[{up}A\r\x1b[2K{key}: {status}\r\x1b[{up}B")
            self.out.flush()

    def bytes(self, digest: str, total: int) -> Callable[[int], None] | None:
        """On a terminal, a callback that draws the download bar of a layer as bytes arrive."""
        if not self.tty:
            return None
        from ..units import human_size

        def draw(done: int) -> None:  # only when the bar grows: at most BAR + 1 times
            filled = self.BAR * done // total if total else self.BAR
            if self.drawn.get(digest) == filled:
                return
            self.drawn[digest] = filled
            bar = ("=" * max(filled - 1, 0) + ">").ljust(self.BAR) if filled else " " * self.BAR
            self.layer(digest, f"Downloading [{bar}]  {human_size(done)}/{human_size(total)}")

        return draw


class Pulled:
    """The outcome of a pull."""

    def __init__(self, image_id: str, manifest_digest: str, repo_digest: str,
                 downloaded: bool) -> None:
        self.image_id, self.manifest_digest = image_id, manifest_digest
        self.repo_digest, self.downloaded = repo_digest, downloaded


def _manifest(st: Storage, client: RegistryClient, repo: str, ref: str) -> tuple[bytes, str, str]:
    """A manifest by tag (always asked) or digest (from the store when there)."""
    if ref.startswith("sha256:") and st.content.has(ref):
        data = st.content.read(ref)
        return data, parse_json(data, ref).get("mediaType", ""), ref
    data, media_type, digest = client.get_manifest(repo, ref)
    st.content.write(digest, data)
    return data, media_type, digest


def pull(st: Storage, client: RegistryClient, ref: Reference, want: platforms.Platform,
         out: TextIO | None = sys.stdout, workers: int = 3) -> Pulled:
    """Pull *ref* into *st*; blobs and snapshots already there are not fetched again."""
    progress = Progress(out)
    repo = ref.repository
    with st.lock(exclusive=False):
        st.content.clean_ingest()
        st.snapshots.clean_tmp()
        data, media_type, top = _manifest(st, client, repo, ref.reference)
        if ref.tag and not ref.digest:
            progress.line(f"{ref.tag}: Pulling from {repo}")
        digest = top
        if media_type in INDEX_TYPES or "manifests" in parse_json(data, top):
            chosen = platforms.select(parse_json(data, top), want)
            digest = descriptor(chosen, top)[0]
            data, media_type, _ = _manifest(st, client, repo, digest)
        manifest = parse_json(data, digest)
        (cdigest, csize, _), layers = manifest_parts(manifest, digest, media_type)
        if not st.content.has(cdigest):
            with client.open_blob(repo, cdigest) as resp:
                st.content.ingest(cdigest, csize, resp)
        config = parse_json(st.content.read(cdigest), cdigest)
        image = parts(digest, media_type, len(data), cdigest, config, layers)
        downloaded = _fetch_layers(st, client, repo, image, progress, workers)
        tags = [(ref.name, ref.tag)] if ref.tag and not ref.digest else []
        record(st, image, tags, [(ref.name, top)])
    progress.line(f"Digest: {top}")
    status = "Downloaded newer image" if downloaded else "Image is up to date"
    progress.line(f"Status: {status} for {ref}")
    return Pulled(cdigest, digest, f"{ref.name}@{top}", downloaded)


def _fetch_layers(st: Storage, client: RegistryClient, repo: str, image: Parts,
                  progress: Progress, workers: int) -> bool:
    """Make the missing layer snapshots and fetch the missing layer blobs, several layers at
    once; whether anything was fetched or made.

    A missing snapshot is unpacked from its stored blob, or its blob streamed from the registry
    into the content store and the snapshot together (one pass: the snapshot is put in place
    only once the blob has passed its digest).

    A layer whose snapshot exists already (the same diff ID came in another blob: another
    image's gzip of the same tar, or its zstd) is not unpacked again, but its blob, if missing,
    is still fetched into the content store, as containerd's content store holds the blobs of
    every image it has: push and save send an image's blobs exactly as its manifest names them,
    byte for byte, so every image recorded has all of its blobs here. Fetched now rather than
    at push time: now the registry that has the blob, its TLS settings and credentials are at
    hand; a later push may go to another registry, and the source may be gone by then.
    """
    todo = missing_layers(st, image)
    blob_only = [i for i, (bdigest, _, _) in enumerate(image.layers)
                 if i not in todo and not st.content.has(bdigest)]
    for i, (bdigest, _, _) in enumerate(image.layers):
        done = i not in todo and i not in blob_only
        progress.layer(bdigest, "Already exists" if done else "Pulling fs layer")

    def one(i: int) -> None:
        bdigest, bsize, _ = image.layers[i]
        if st.content.has(bdigest):
            unpack_layer(st, image, i)
        else:
            with client.open_blob(repo, bdigest) as resp, \
                    st.content.writer(bdigest, bsize, progress.bytes(bdigest, bsize)) as blob:

                def verify() -> None:
                    blob.commit(resp)
                    progress.layer(bdigest, "Download complete")

                try:
                    st.snapshots.create(image.chains[i], image.chains[i - 1] if i else "",
                                        image.diff_ids[i], blob.tee(resp), verify)
                except OcishError:
                    if not blob.closed:  # a layer that does not unpack may be a bad download:
                        blob.commit(resp)  # the blob's own size or digest error says so
                    raise
        progress.layer(bdigest, "Pull complete")

    def fetch_blob(i: int) -> None:
        bdigest, bsize, _ = image.layers[i]
        with client.open_blob(repo, bdigest) as resp:
            st.content.ingest(bdigest, bsize, resp, progress.bytes(bdigest, bsize))
        progress.layer(bdigest, "Download complete")

    run_all([partial(one, i) for i in todo] + [partial(fetch_blob, i) for i in blob_only], workers)
    return bool(todo or blob_only)
