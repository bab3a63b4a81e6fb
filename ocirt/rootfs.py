"""The container's filesystem view, in the order the init builds it.

1. :func:`prepare` (in the new mount namespace, before the hooks): root propagation, the rootfs
   bind-mounted on itself, every entry of ``mounts``, /dev, ``linux.devices``, the cwd.
2. :func:`pivot` into the rootfs (or MS_MOVE + chroot with ``--no-pivot``; chroot alone in the
   caller's mount namespace).
3. :func:`finalize` (after console and hostname): ``root.readonly``, ``readonlyPaths``,
   ``maskedPaths``.

Destinations are resolved inside the rootfs only (see :mod:`ocirt.linux.mounts`).

Without a mount namespace of its own (config-linux.md: no ``mount`` entry), the container shares
the caller's: nothing of that namespace is changed but what is made for the container, all of it
on a bind of the rootfs on itself, and each mount is reported (``Context.on_mount``) as it is
made, for ``delete`` to undo exactly those. No pivot_root there (it would change the root of the
caller's namespace), no MS_MOVE: chroot, as runc does.
"""

from __future__ import annotations

import errno
import os
import stat

from .cgroups import detect
from .errors import ConfigError, OcirtError, SysError, strerror
from .linux import syscalls as sc
from .linux.copytree import copy_tree
from .linux.mounts import (
    PROPAGATION,
    Options,
    fd_path,
    is_dir_fd,
    locked_flags,
    make_in_root,
    mount_at,
    mount_id_at,
    mount_table,
    open_in_root,
    remount,
    resolve_in_root,
)
from .spec import Device, Mount, Spec

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

DEFAULT_DEVICES = (
    Device("c", "/dev/null", 1, 3, 0o666, 0, 0), Device("c", "/dev/zero", 1, 5, 0o666, 0, 0),
    Device("c", "/dev/full", 1, 7, 0o666, 0, 0), Device("c", "/dev/random", 1, 8, 0o666, 0, 0),
    Device("c", "/dev/urandom", 1, 9, 0o666, 0, 0), Device("c", "/dev/tty", 5, 0, 0o666, 0, 0),
)
_DEV_LINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
              ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"))
_DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def _fail(what: str, exc: OSError) -> OcirtError:
    return SysError(what, exc.errno or 0)


class Context:
    """What the rootfs steps need beyond the spec."""

    def __init__(self, spec: Spec, rootfs: str, bundle: str, cgroup_paths: dict[str, str],
                 userns: bool, new_cgroupns: bool,
                 cgroupns_ready: Callable[[], object] = lambda: None,
                 on_mount: Callable[[int, str], None] | None = None,
                 bind_trees: dict[int, int] | None = None) -> None:
        self.spec = spec
        self.rootfs = rootfs
        self.bundle = bundle
        self.cgroup_paths = cgroup_paths
        self.userns = userns
        self.new_cgroupns = new_cgroupns
        #: called before a cgroup filesystem is mounted in a new cgroup namespace: returns once
        #: that namespace exists (the init makes it when it has joined its cgroups)
        self.cgroupns_ready = cgroupns_ready
        #: the flags of a read-only /dev tmpfs, mounted writable until /dev is filled
        self.readonly_dev = 0
        #: set when the container shares the caller's mount namespace: told (mount id, path
        #: in the rootfs) of each mount made, as soon as it is made
        self.on_mount = on_mount
        #: detached copies of bind sources (index in ``mounts`` -> fd), opened by the runtime's
        #: side before the user namespace, which may not reach them (see open_bind_sources)
        self.bind_trees = bind_trees or {}

    def tracked(self, path: str, make: Callable[[], object], root: str = "") -> None:
        """``make()`` a mount on ``path`` (inside ``root``, the rootfs by default) and, in the
        caller's mount namespace, report the mount that is then on top there, even if
        ``make`` failed half-way (a bind whose remount failed is still mounted)."""
        if self.on_mount is None:
            make()
            return
        root = root or self.rootfs
        top = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            where = resolve_in_root(top, path)
        finally:
            os.close(top)
        before = mount_id_at(root, where)
        try:
            make()
        finally:
            after = mount_id_at(root, where)
            if after and after != before:
                self.on_mount(after, where)


def prepare(ctx: Context) -> None:
    spec = ctx.spec
    propagation = PROPAGATION.get(spec.linux.rootfs_propagation, sc.MS_SLAVE | sc.MS_REC)
    try:
        if ctx.on_mount is None:
            sc.mount(None, "/", None, propagation)
            if propagation & sc.MS_SHARED:
                _make_parent_private(ctx.rootfs)
            sc.mount(ctx.rootfs, ctx.rootfs, "bind", sc.MS_BIND | sc.MS_REC)
        else:
            # The caller's "/" is not ours to change: the propagation asked for the root is
            # given to our bind of the rootfs (rslave by default: the container's mounts stay
            # on it, the host's still reach it).
            ctx.tracked("/", lambda: sc.mount(ctx.rootfs, ctx.rootfs, "bind",
                                              sc.MS_BIND | sc.MS_REC))
            sc.mount(None, ctx.rootfs, None, propagation)
    except OSError as exc:
        raise _fail(f"prepare rootfs {ctx.rootfs}", exc) from None
    root_fd = os.open(ctx.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index, m in enumerate(spec.mounts):
            ctx.tracked(m.destination, _MountEntry(ctx, root_fd, m, index))
            if os.path.normpath("/" + m.destination.lstrip("/")) == "/":
                # A mount on "/" replaces the root filesystem, as runc's does: the mounts
                # after it land on it, and it is what the container pivots into.
                os.close(root_fd)
                root_fd = os.open(ctx.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        dev_bound = any(m.destination.rstrip("/") == "/dev" and Options(m.options).bind
                        for m in spec.mounts)
        if not dev_bound:
            _setup_dev(ctx, root_fd)
        for dev in spec.linux.devices:
            _make_device(ctx, root_fd, dev)
        if ctx.readonly_dev:
            try:
                _remount_at(root_fd, "/dev", ctx.readonly_dev)
            except OSError as exc:
                raise _fail("remount /dev read-only", exc) from None
        if spec.process is not None:
            try:
                os.close(make_in_root(root_fd, spec.process.cwd))
            except OSError as exc:
                raise _fail(f"mkdir cwd {spec.process.cwd}", exc) from None
    finally:
        os.close(root_fd)


def open_bind_sources(spec: Spec, bundle: str) -> dict[int, int]:
    """Detached copies (open_tree) of the sources of the bind mounts, by index in ``mounts``,
    made while we are still the host's root: a user namespace's root may be unable to reach a
    source (a directory of mode 0700 owned by the host's root, on the way), as runc does with
    its mount fds. A source that cannot be opened now is left to the mount itself, which
    reports it in its words."""
    trees: dict[int, int] = {}
    for index, m in enumerate(spec.mounts):
        opts = Options(m.options)
        if not (opts.bind or m.type == "bind"):
            continue
        source = m.source if m.source.startswith("/") else os.path.join(bundle, m.source)
        try:
            trees[index] = sc.open_tree_clone(source, bool(opts.flags & sc.MS_REC))
        except OSError:
            continue
    return trees


def _make_parent_private(path: str) -> None:
    """pivot_root refuses a new root whose parent mount is shared: make that one private."""
    best = "/"
    for mountpoint, _, _ in mount_table():
        if _holds(mountpoint, path) and len(mountpoint) > len(best):
            best = mountpoint
    sc.mount(None, best, None, sc.MS_PRIVATE)


def _holds(mountpoint: str, path: str) -> bool:
    """Whether ``path`` is ``mountpoint`` or below it."""
    return (path + "/").startswith(mountpoint.rstrip("/") + "/")


class _MountEntry:
    """One entry of ``mounts``, to make when called (see Context.tracked)."""

    def __init__(self, ctx: Context, root_fd: int, m: Mount, index: int) -> None:
        self.args = (ctx, root_fd, m, index)

    def __call__(self) -> None:
        _mount_entry(*self.args)


def _mount_entry(ctx: Context, root_fd: int, m: Mount, index: int) -> None:
    opts = Options(m.options)
    if ctx.new_cgroupns and m.type in ("cgroup", "cgroup2"):
        ctx.cgroupns_ready()
    try:
        if opts.bind or m.type == "bind":
            _bind(ctx, root_fd, m, opts, ctx.bind_trees.get(index, -1))
        elif m.type == "cgroup" or (m.type == "cgroup2" and not ctx.new_cgroupns
                                     and detect.UNIFIED in ctx.cgroup_paths
                                     and len(ctx.cgroup_paths) == 1):
            _mount_cgroups(ctx, root_fd, m, opts)
        else:
            existed = _exists(root_fd, m.destination)
            fd = _destination(root_fd, m)
            try:
                if m.type == "tmpfs":
                    _mount_tmpfs(ctx, root_fd, fd, m, opts, existed)
                else:
                    mount_at(fd, m.source or m.type or "none", m.type or None, opts.flags,
                             opts.data)
            finally:
                os.close(fd)
        if opts.attr_set or opts.attr_clr or opts.propagation:
            # the new mount, looked up afresh: one on "/" is not below root_fd
            fd = _open_new_mount(ctx, m.destination)
            try:
                if opts.attr_set or opts.attr_clr:
                    sc.mount_setattr_recursive(fd, opts.attr_set, opts.attr_clr)
                for flag in opts.propagation:
                    sc.mount(None, fd_path(fd), None, flag)
            finally:
                os.close(fd)
    except _NotOrdinaryDirectory:
        raise OcirtError(f"mount {m.source or m.type} to {m.destination}: filesystem "
                         f"\"{m.type}\" must be mounted on ordinary directory") from None
    except OSError as exc:
        raise OcirtError(f"mount {m.source or m.type} to {m.destination}: "
                         f"{strerror(exc.errno or 0)}") from None


class _NotOrdinaryDirectory(Exception):
    pass


#: Filesystems mounted only on a real directory: through a symlink (to a directory inside the
#: rootfs or not) the container chose where procfs lands, which defeated the masks and the
#: checks made on /proc (CVE-2019-19921, CVE-2023-27561, CVE-2023-28642); runc refuses too.
_ORDINARY_DIRECTORY_ONLY = ("proc", "sysfs")


def _destination(root_fd: int, m: Mount) -> int:
    """An O_PATH fd of the mount's destination (made if missing) inside the root."""
    if m.type not in _ORDINARY_DIRECTORY_ONLY:
        return make_in_root(root_fd, m.destination)
    try:
        fd = make_in_root(root_fd, m.destination, follow=False)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a symlink, or a file, on the way
            raise _NotOrdinaryDirectory from None
        raise
    if not is_dir_fd(fd):
        os.close(fd)
        raise _NotOrdinaryDirectory
    return fd


def _exists(root_fd: int, path: str) -> bool:
    try:
        os.close(open_in_root(root_fd, path))
    except OSError:
        return False
    return True


def _mount_tmpfs(ctx: Context, root_fd: int, fd: int, m: Mount, opts: Options,
                 existed: bool) -> None:
    """A tmpfs, as runc mounts one: on a directory that existed, without ``mode=``, with that
    directory's mode; with ``tmpcopyup``, holding a copy of what the directory held (podman
    asks for it on every tmpfs); read-only /dev only once it is filled (see :func:`prepare`)."""
    data, flags = opts.data, opts.flags
    if not any(item.startswith("mode=") for item in data.split(",")) and existed:
        data = ",".join(filter(None, [data, f"mode={stat.S_IMODE(os.fstat(fd).st_mode):o}"]))
    if m.destination.rstrip("/") == "/dev" and flags & sc.MS_RDONLY:
        ctx.readonly_dev = flags
        flags &= ~sc.MS_RDONLY
    source = -1
    if "tmpcopyup" in m.options:
        source = os.open(fd_path(fd), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        mount_at(fd, m.source or "tmpfs", "tmpfs", flags & ~sc.MS_RDONLY if source >= 0
                 else flags, data)
        if source >= 0:
            new = open_in_root(root_fd, m.destination,
                               os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                copy_tree(source, new)
            finally:
                os.close(new)
            if flags & sc.MS_RDONLY:
                _remount_at(root_fd, m.destination, flags)
    finally:
        if source >= 0:
            os.close(source)


def _bind(ctx: Context, root_fd: int, m: Mount, opts: Options, tree: int = -1) -> None:
    """A bind mount: of ``tree`` (a detached copy of the source, see open_bind_sources) when
    there is one, else of the source's path."""
    source = m.source if m.source.startswith("/") else os.path.join(ctx.bundle, m.source)
    try:
        is_dir = stat.S_ISDIR((os.fstat(tree) if tree >= 0 else os.stat(source)).st_mode)
    except OSError as exc:
        raise ConfigError(f"mount {source} to {m.destination}: stat {source}: "
                          f"{strerror(exc.errno or 0)}") from None
    fd = make_in_root(root_fd, m.destination, directory=is_dir)
    try:
        if tree >= 0:
            sc.move_mount(tree, fd)
        else:
            mount_at(fd, source, None, sc.MS_BIND | (opts.flags & sc.MS_REC))
    finally:
        os.close(fd)
    extra = opts.flags & ~(sc.MS_BIND | sc.MS_REC | sc.MS_REMOUNT)
    if extra:
        fd = _open_new_mount(ctx, m.destination)
        try:
            remount(fd, extra)
        finally:
            os.close(fd)


def _mount_cgroups(ctx: Context, root_fd: int, m: Mount, opts: Options) -> None:
    """A ``cgroup`` mount: cgroup2 on a pure v2 host; on v1 and hybrid hosts a tmpfs holding one
    mount per hierarchy, each showing the container's own cgroup (a bind of it, or a fresh mount
    of the hierarchy when the container has its own cgroup namespace)."""
    flags = opts.flags | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    paths = ctx.cgroup_paths
    if list(paths) == [detect.UNIFIED]:
        fd = make_in_root(root_fd, m.destination)
        try:
            if ctx.new_cgroupns:
                mount_at(fd, "cgroup2", "cgroup2", flags)
            else:
                mount_at(fd, paths[detect.UNIFIED], None, sc.MS_BIND | sc.MS_REC)
                _remount_at(root_fd, m.destination, flags)
        finally:
            os.close(fd)
        return
    fd = make_in_root(root_fd, m.destination)
    try:
        mount_at(fd, "tmpfs", "tmpfs", flags & ~sc.MS_RDONLY, "mode=755")
    finally:
        os.close(fd)
    for key, host_path in paths.items():
        name = "unified" if key == detect.UNIFIED else key.replace("name=", "")
        dest = f"{m.destination}/{name}"
        sub = make_in_root(root_fd, dest)
        try:
            if ctx.new_cgroupns:
                if key == detect.UNIFIED:
                    mount_at(sub, "cgroup2", "cgroup2", flags)
                else:
                    data = key if not key.startswith("name=") else f"none,{key}"
                    mount_at(sub, "cgroup", "cgroup", flags, data)
            else:
                mount_at(sub, host_path, None, sc.MS_BIND | sc.MS_REC)
                _remount_at(root_fd, dest, flags)
        finally:
            os.close(sub)
        if "," in name:
            for part in name.split(","):
                parent = open_in_root(root_fd, m.destination)
                try:
                    os.symlink(name, part, dir_fd=parent)
                except FileExistsError:
                    pass
                finally:
                    os.close(parent)
    if flags & sc.MS_RDONLY:
        _remount_at(root_fd, m.destination, flags)


def _remount_at(root_fd: int, path: str, flags: int) -> None:
    fd = open_in_root(root_fd, path)
    try:
        remount(fd, flags)
    finally:
        os.close(fd)


def _open_new_mount(ctx: Context, destination: str) -> int:
    """An O_PATH fd of the mount just made on ``destination``: looked up from the rootfs's
    path, not from an fd opened before, since a mount on "/" is on top of that fd's."""
    top = os.open(ctx.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return open_in_root(top, destination)
    finally:
        os.close(top)


def _setup_dev(ctx: Context, root_fd: int) -> None:
    configured = {d.path for d in ctx.spec.linux.devices}
    for dev in DEFAULT_DEVICES:
        if dev.path not in configured:
            _make_device(ctx, root_fd, dev)
    links = list(_DEV_LINKS)
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    links.append(("pts/ptmx", "/dev/ptmx"))
    dev_fd = make_in_root(root_fd, "/dev")
    try:
        for target, link in links:
            name = link.rsplit("/", 1)[1]
            try:
                os.symlink(target, name, dir_fd=dev_fd)
            except FileExistsError:
                if name == "ptmx":  # a ptmx node from the rootfs: replace it by the link
                    os.unlink(name, dir_fd=dev_fd)
                    os.symlink(target, name, dir_fd=dev_fd)
    except OSError as exc:
        raise _fail("set up /dev", exc) from None
    finally:
        os.close(dev_fd)


def _make_device(ctx: Context, root_fd: int, dev: Device) -> None:
    parent_path, name = dev.path.rsplit("/", 1)
    try:
        parent = make_in_root(root_fd, parent_path or "/")
    except OSError as exc:
        raise _fail(f"create device {dev.path}", exc) from None
    try:
        if ctx.userns:
            # mknod is not allowed in a user namespace: bind the host's node instead.
            try:
                os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o644, dir_fd=parent))
            except FileExistsError:
                pass
            def bind() -> None:
                target = open_in_root(root_fd, dev.path)
                try:
                    mount_at(target, dev.path, None, sc.MS_BIND)
                finally:
                    os.close(target)

            ctx.tracked(dev.path, bind)
            return
        try:
            os.unlink(name, dir_fd=parent)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise ConfigError(f"create device {dev.path}: is a directory") from None
        mode = dev.file_mode if dev.file_mode is not None else 0o666
        os.mknod(name, (mode & 0o7777) | _DEVICE_TYPES[dev.type],
                 os.makedev(dev.major, dev.minor) if dev.type != "p" else 0, dir_fd=parent)
        os.chown(name, dev.uid or 0, dev.gid or 0, dir_fd=parent, follow_symlinks=False)
    except OSError as exc:
        raise _fail(f"create device {dev.path}", exc) from None
    finally:
        os.close(parent)


def pivot(rootfs: str, no_pivot: bool, shared_mountns: bool = False) -> None:
    """Make ``rootfs`` the root: pivot_root and detach the old root, or move and chroot; in the
    caller's mount namespace (``shared_mountns``) only chroot: pivot_root would change the
    root of every process there, MS_MOVE and the detaching would take the caller's mounts."""
    try:
        if shared_mountns:
            os.chdir(rootfs)
            os.chroot(".")
            os.chdir("/")
            return
        if no_pivot:
            _detach_outside(rootfs)
            os.chdir(rootfs)
            sc.mount(rootfs, "/", None, sc.MS_MOVE)
            os.chroot(".")
            os.chdir("/")
            return
        old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        new_root = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fchdir(new_root)
            sc.pivot_root(".", ".")
            os.fchdir(old_root)
            sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
            sc.umount2(".", sc.MNT_DETACH)
            os.chdir("/")
        finally:
            os.close(old_root)
            os.close(new_root)
    except OSError as exc:
        raise _fail(f"pivot_root {rootfs}", exc) from None


def _detach_outside(rootfs: str) -> None:
    """Before MS_MOVE + chroot (``--no-pivot``), detach every mount that neither holds the
    rootfs nor is in it.

    chroot leaves the old root's mounts in the mount namespace: out of reach by path under the
    rootfs moved over "/", but not for the kernel, which lets a process that makes its own user
    and mount namespaces mount a new procfs or sysfs as long as a fully visible one is in its
    namespace (fs/namespace.c, mount_too_revealing): the host's, unmasked, would do. A mount
    that cannot be detached (locked, in a user namespace) is, when it is a procfs or sysfs,
    covered by an empty read-only tmpfs, which makes it not fully visible."""
    for point, root, fstype in mount_table():
        if _holds(rootfs, point) or _holds(point, rootfs):
            continue
        try:
            # slave first: the unmount must not propagate to the host's peers of the mount
            sc.mount(None, point, None, sc.MS_SLAVE | sc.MS_REC)
            sc.umount2(point, sc.MNT_DETACH)
        except OSError as exc:
            if exc.errno == errno.ENOENT:  # under a mount detached before it
                continue
            # EINVAL, EPERM: locked in our user namespace; EACCES: under a directory our user
            # namespace's root may not search (another's mounts): only a procfs or sysfs
            # matters, and it must be covered (if that fails too, so does the create)
            if exc.errno not in (errno.EINVAL, errno.EPERM, errno.EACCES):
                raise
            if fstype in _ORDINARY_DIRECTORY_ONLY and root == "/":
                sc.mount("tmpfs", point, "tmpfs",
                         sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC, "size=0")


def readonly_root() -> None:
    fd = os.open("/", os.O_PATH | os.O_CLOEXEC)
    try:
        remount(fd, sc.MS_RDONLY)
    except OSError as exc:
        raise _fail("remount / read-only", exc) from None
    finally:
        os.close(fd)


def _existing(paths: list[str]) -> Iterator[tuple[int, str, int]]:
    """(fd of /, path, O_PATH fd) for each of ``paths`` that exists; missing ones are skipped."""
    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for path in paths:
            try:
                fd = open_in_root(root_fd, path)
            except FileNotFoundError:
                continue
            try:
                yield root_fd, path, fd
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)


def readonly_paths(paths: list[str]) -> None:
    """Bind each path on itself, then remount that bind read-only (keeping its other flags)."""
    try:
        for root_fd, path, fd in _existing(paths):
            mount_at(fd, fd_path(fd), None, sc.MS_BIND | sc.MS_REC)
            top = open_in_root(root_fd, path)  # looked up again: the new mount's root
            try:
                remount(top, sc.MS_RDONLY | locked_flags(top))
            finally:
                os.close(top)
    except OSError as exc:
        raise _fail("make path read-only", exc) from None


def masked_paths(paths: list[str]) -> None:
    """An empty read-only tmpfs over directories, /dev/null over files."""
    null = -1
    try:
        for root_fd, _, fd in _existing(paths):
            if is_dir_fd(fd):
                mount_at(fd, "tmpfs", "tmpfs", sc.MS_RDONLY)
                continue
            if null < 0:
                null = _open_dev_null(root_fd)
            mount_at(fd, fd_path(null), None, sc.MS_BIND)
    except OSError as exc:
        raise _fail("mask path", exc) from None
    finally:
        if null >= 0:
            os.close(null)


def _open_dev_null(root_fd: int) -> int:
    """The container's /dev/null, only if it is the null device itself: a symlink or another
    file there must not be bind-mounted over masked files (CVE-2025-31133)."""
    fd = sc.openat2(root_fd, "dev/null", os.O_PATH,
                    sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_SYMLINKS | sc.RESOLVE_NO_MAGICLINKS)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise OcirtError("mask path: /dev/null is not the null device (1:3)")
    return fd
