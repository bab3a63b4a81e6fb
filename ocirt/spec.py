"""The runtime-spec configuration (config.json) as typed records.

:func:`load` parses a bundle's config.json and checks all of it, as strictly as the JSON Schema
of :mod:`ocirt.schema` (types, ranges, enums, patterns, required members) and more (absolute
paths, known rlimits, no NUL bytes). It is the one validator: ``create`` and ``ocirt check``
both run it, so they refuse the same configs with the same line; the schema is a cross-check
run by the tests (see :mod:`ocirt.specread` for why it is not the validator itself).
"""

from __future__ import annotations

import os

from . import jsonio, specraw
from .errors import ConfigError
from .specread import (
    INT64,
    UINT32,
    UINT64,
    Reader,
    env_entry,
    escape,
    fail,
    prefixed_name,
    semver,
    show,
)

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

class _Factory:
    """A field default made afresh for each record (dataclasses' ``default_factory``)."""

    def __init__(self, make: Any) -> None:
        self.make = make


def field(default_factory: Any) -> Any:
    return _Factory(default_factory)


class _Record:
    """A dataclass without :mod:`dataclasses`: the annotated fields, in order, are the
    constructor's arguments (positional or keyword), class-level values their defaults;
    equality and repr compare and show the fields.

    ``import dataclasses`` (inspect, ast, enum ...) and the code it generates for each class
    cost about 10 ms, on every ``create``: more than parsing config.json itself.
    """

    _fields: tuple[str, ...] = ()

    def __init_subclass__(cls) -> None:
        cls._fields = tuple(cls.__dict__.get("__annotations__", ()))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        fields = self._fields
        if len(args) > len(fields):
            raise TypeError(f"{type(self).__name__} takes {len(fields)} arguments")
        for name, value in zip(fields, args, strict=False):
            setattr(self, name, value)
        for name in fields[len(args):]:
            if name in kwargs:
                value = kwargs.pop(name)
            else:
                value = getattr(type(self), name, _Record)
                if value is _Record:
                    raise TypeError(f"{type(self).__name__}: missing argument {name!r}")
                if isinstance(value, _Factory):
                    value = value.make()
            setattr(self, name, value)
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected argument {next(iter(kwargs))!r}")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self._fields)

    def __repr__(self) -> str:
        args = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"{type(self).__name__}({args})"


def _absolute(path: str, pointer: str) -> str:
    if not path.startswith("/"):
        raise fail(pointer, f"must be an absolute path, not {show(path)}")
    return path


class Root(_Record):
    path: str
    readonly: bool = False


class Mount(_Record):
    destination: str
    type: str = ""
    source: str = ""
    options: list[str] = field(default_factory=list)


class User(_Record):
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: list[int] = field(default_factory=list)


class Rlimit(_Record):
    type: str
    soft: int
    hard: int


class Capabilities(_Record):
    bounding: list[str] = field(default_factory=list)
    effective: list[str] = field(default_factory=list)
    inheritable: list[str] = field(default_factory=list)
    permitted: list[str] = field(default_factory=list)
    ambient: list[str] = field(default_factory=list)


class Process(_Record):
    args: list[str]
    cwd: str
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)
    env: list[str] = field(default_factory=list)
    user: User = field(default_factory=User)
    rlimits: list[Rlimit] = field(default_factory=list)
    capabilities: Capabilities | None = None
    no_new_privileges: bool = False
    oom_score_adj: int | None = None
    apparmor_profile: str = ""
    selinux_label: str = ""
    io_priority: tuple[str, int] | None = None   # (class, priority)
    scheduler: dict[str, Any] | None = None
    exec_cpu_affinity: dict[str, str] | None = None


class Hook(_Record):
    path: str
    args: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    timeout: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.args:
            out["args"] = self.args
        if self.env:
            out["env"] = self.env
        if self.timeout is not None:
            out["timeout"] = self.timeout
        return out


HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")


class Namespace(_Record):
    type: str
    path: str = ""


class IDMapping(_Record):
    container_id: int
    host_id: int
    size: int


class Device(_Record):
    type: str
    path: str
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


class Linux(_Record):
    namespaces: list[Namespace] = field(default_factory=list)
    uid_mappings: list[IDMapping] = field(default_factory=list)
    gid_mappings: list[IDMapping] = field(default_factory=list)
    time_offsets: dict[str, tuple[int, int]] = field(default_factory=dict)
    devices: list[Device] = field(default_factory=list)
    cgroups_path: str = ""
    resources: dict[str, Any] = field(default_factory=dict)
    sysctl: dict[str, str] = field(default_factory=dict)
    seccomp: dict[str, Any] | None = None
    rootfs_propagation: str = ""
    masked_paths: list[str] = field(default_factory=list)
    readonly_paths: list[str] = field(default_factory=list)
    mount_label: str = ""
    personality: dict[str, Any] | None = None
    intel_rdt: dict[str, Any] | None = None

    def namespace(self, kind: str) -> Namespace | None:
        return next((ns for ns in self.namespaces if ns.type == kind), None)


class Spec(_Record):
    oci_version: str
    root: Root
    process: Process | None
    mounts: list[Mount] = field(default_factory=list)
    hostname: str = ""
    domainname: str = ""
    hooks: dict[str, list[Hook]] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    linux: Linux = field(default_factory=Linux)


NAMESPACE_TYPES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
PROPAGATIONS = ("", "shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate",
                "runbindable")


def check_strings(value: Any, pointer: str = "", source: str = "config.json") -> None:
    """Refuse strings no system call can take: a NUL byte, or a lone surrogate (a ``\\ud800``
    escape) that has no UTF-8 encoding. Keys and values, at any depth."""
    if isinstance(value, str):
        if "\x00" in value:
            raise fail(pointer, "string contains a NUL byte", source)
        try:
            value.encode()
        except UnicodeEncodeError:
            raise fail(pointer, "string is not valid UTF-8", source) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            name = key.encode(errors="backslashreplace").decode().replace("\x00", "\\x00")
            check_strings(key, f"{pointer}/{escape(name)}", source)
            check_strings(item, f"{pointer}/{escape(name)}", source)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_strings(item, f"{pointer}/{i}", source)


def parse_process(doc: Any, pointer: str = "/process", source: str = "config.json") -> Process:
    """A process object (config.json's ``process``, or ``exec --process``'s file: ``source``)."""
    check_strings(doc, pointer, source)
    return _process(Reader(doc, pointer, source))


#: setrlimit(2)'s resources, as runc knows them
RLIMITS = ("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
           "RLIMIT_LOCKS", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE",
           "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME", "RLIMIT_SIGPENDING",
           "RLIMIT_STACK")
CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
_CAPABILITY = prefixed_name("CAP_")
_ENV = "an environment entry KEY=value"


def _process(r: Reader) -> Process:
    args = r.strings("args")
    if not args:
        raise r.fail("args", "must not be empty")
    cwd = _absolute(r.get("cwd", str, required=True), r.at("cwd"))
    size = r.child("consoleSize")
    user_r = r.child("user")
    user = User()
    if user_r is not None:
        gids = user_r.get("additionalGids", list, [])
        for i, g in enumerate(gids):
            if not (isinstance(g, int) and not isinstance(g, bool) and 0 <= g <= UINT32):
                raise user_r.fail_item("additionalGids", i,
                                       f"must be an integer between 0 and {UINT32}")
        user_r.get("username", str)
        user = User(uid=user_r.uint("uid", required=True) or 0,
                    gid=user_r.uint("gid", required=True) or 0,
                    umask=user_r.uint("umask"), additional_gids=gids)
    rlimits = []
    for rl in r.objects("rlimits"):
        kind = rl.enum("type", RLIMITS, "resource", required=True) or ""
        rlimits.append(Rlimit(kind, rl.uint("soft", required=True, limit=UINT64) or 0,
                              rl.uint("hard", required=True, limit=UINT64) or 0))
    caps_r = r.child("capabilities")
    caps = None
    if caps_r is not None:
        caps = Capabilities(*(caps_r.strings(k, _CAPABILITY, "a capability such as 'CAP_CHOWN'")
                              for k in CAPABILITY_SETS))
    oom = r.integer("oomScoreAdj", -1000, 1000)
    r.get("commandLine", str)
    affinity = r.child("execCPUAffinity")
    return Process(
        args=args, cwd=cwd, terminal=r.get("terminal", bool, False),
        console_size=None if size is None else (size.uint("height", required=True) or 0,
                                                size.uint("width", required=True) or 0),
        env=r.strings("env", env_entry, _ENV), user=user, rlimits=rlimits, capabilities=caps,
        no_new_privileges=r.get("noNewPrivileges", bool, False), oom_score_adj=oom,
        apparmor_profile=r.get("apparmorProfile", str, ""),
        selinux_label=r.get("selinuxLabel", str, ""), io_priority=_io_priority(r),
        scheduler=_scheduler(r),
        exec_cpu_affinity=None if affinity is None else specraw.cpu_affinity(affinity) or None)


IO_CLASSES = ("IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE")
SCHED_POLICIES = specraw.SCHED_POLICIES


def _io_priority(r: Reader) -> tuple[str, int] | None:
    io = r.child("ioPriority")
    if io is None:
        return None
    klass = io.enum("class", IO_CLASSES, "class", required=True) or ""
    return klass, io.integer("priority", 0, 7, 0) or 0


def _scheduler(r: Reader) -> dict[str, Any] | None:
    sched = r.child("scheduler")
    if sched is None:
        return None
    specraw.scheduler(sched)
    return dict(sched.obj)


def _mappings(r: Reader, key: str) -> list[IDMapping]:
    return [IDMapping(m.uint("containerID", required=True) or 0, m.uint("hostID", required=True) or 0,
                      m.uint("size", required=True) or 0) for m in r.objects(key)]


def _linux(r: Reader) -> Linux:
    namespaces = []
    seen = set()
    for ns in r.objects("namespaces"):
        kind = ns.enum("type", NAMESPACE_TYPES, "namespace type", required=True) or ""
        if kind in seen:
            raise ns.fail("type", f"duplicate namespace type {kind!r}")
        seen.add(kind)
        path = ns.get("path", str, "")
        if path:
            _absolute(path, ns.at("path"))
        namespaces.append(Namespace(kind, path))
    offsets = {}
    time_r = r.child("timeOffsets")
    if time_r is not None:
        for clock in time_r.obj:
            if clock not in ("monotonic", "boottime"):
                raise time_r.fail(clock, f"unknown clock {show(clock)}")
            c = time_r.child(clock)
            if c is not None:
                offsets[clock] = (c.int64("secs") or 0, c.uint("nanosecs", 0) or 0)
    devices = []
    for d in r.objects("devices"):
        kind = d.enum("type", ("c", "b", "u", "p"), "device type", required=True) or ""
        path = _absolute(d.get("path", str, required=True), d.at("path"))
        path = "/" + os.path.normpath(path).lstrip("/")  # "/dev//fuse/" is /dev/fuse (as runc)
        if path == "/":
            raise d.fail("path", "a device cannot be /")
        numbers_required = kind != "p"
        devices.append(Device(kind, path, d.int64("major", numbers_required) or 0,
                              d.int64("minor", numbers_required) or 0, d.uint("fileMode"),
                              d.uint("uid"), d.uint("gid")))
    propagation = r.enum("rootfsPropagation", PROPAGATIONS, "propagation", "") or ""
    _raw(r, "resources", specraw.resources)
    _raw(r, "intelRdt", specraw.intel_rdt)
    _raw(r, "seccomp", specraw.seccomp)
    _raw(r, "memoryPolicy", specraw.memory_policy)
    _raw(r, "netDevices", specraw.net_devices)
    return Linux(
        namespaces=namespaces, uid_mappings=_mappings(r, "uidMappings"),
        gid_mappings=_mappings(r, "gidMappings"), time_offsets=offsets, devices=devices,
        cgroups_path=r.get("cgroupsPath", str, ""), resources=r.get("resources", dict, {}),
        sysctl=r.str_map("sysctl"), seccomp=r.get("seccomp", dict),
        rootfs_propagation=propagation,
        masked_paths=[_absolute(p, f"{r.at('maskedPaths')}/{i}")
                      for i, p in enumerate(r.strings("maskedPaths"))],
        readonly_paths=[_absolute(p, f"{r.at('readonlyPaths')}/{i}")
                        for i, p in enumerate(r.strings("readonlyPaths"))],
        mount_label=r.get("mountLabel", str, ""), personality=_personality(r),
        intel_rdt=r.get("intelRdt", dict))


def _raw(r: Reader, key: str, check: Any) -> None:
    """Check a member kept as raw JSON."""
    child = r.child(key)
    if child is not None:
        check(child)


def _personality(r: Reader) -> dict[str, Any] | None:
    p = r.child("personality")
    if p is None:
        return None
    p.enum("domain", ("LINUX", "LINUX32"), "domain", required=True)
    p.strings("flags")
    return dict(p.obj)


def _hook(h: Reader) -> Hook:
    path = _absolute(h.get("path", str, required=True), h.at("path"))
    args = h.strings("args")
    env = h.strings("env", env_entry, _ENV)
    return Hook(path, args, env, h.integer("timeout", 1, INT64[1]))


def parse(doc: Any) -> Spec:
    """Build a :class:`Spec` from decoded config.json, or raise ConfigError naming the field."""
    check_strings(doc)
    r = Reader(doc, "")
    version = r.get("ociVersion", str, required=True)
    if not semver(version):
        raise r.fail("ociVersion", f"must be a SemVer 2.0.0 version such as '1.2.0', not "
                     f"{show(version)}")
    root_r = r.child("root")
    if root_r is None:
        raise r.fail("root", "is required")
    root_path = root_r.get("path", str, required=True)
    if not root_path:
        raise root_r.fail("path", "must not be empty")
    mounts = []
    for m in r.objects("mounts"):
        mounts.append(Mount(_absolute(m.get("destination", str, required=True),
                                      m.at("destination")),
                            m.get("type", str, ""), m.get("source", str, ""), m.strings("options")))
        _mappings(m, "uidMappings")
        _mappings(m, "gidMappings")
    hooks: dict[str, list[Hook]] = {}
    hooks_r = r.child("hooks")
    if hooks_r is not None:
        for kind in HOOK_KINDS:
            entries = [_hook(h) for h in hooks_r.objects(kind)]
            if entries:
                hooks[kind] = entries
    process_r = r.child("process")
    linux_r = r.child("linux")
    return Spec(
        oci_version=version,
        root=Root(root_path, root_r.get("readonly", bool, False)),
        process=None if process_r is None else _process(process_r),
        mounts=mounts, hostname=r.get("hostname", str, ""), domainname=r.get("domainname", str, ""),
        hooks=hooks, annotations=r.str_map("annotations", nonempty_keys=True),
        linux=Linux() if linux_r is None else _linux(linux_r))


def load(bundle: str) -> tuple[Spec, dict[str, Any]]:
    """Read ``<bundle>/config.json``: the parsed spec and the raw document."""
    path = f"{bundle}/config.json"
    try:
        with open(path, "rb") as f:
            doc = jsonio.loads(f.read())
    except FileNotFoundError:
        raise ConfigError(f"open {path}: no such file or directory") from None
    except OSError as exc:
        raise ConfigError(f"open {path}: {exc.strerror}") from None
    except ValueError as exc:  # jsonio's own one-line words ("Expecting value: char 0")
        raise ConfigError(f"config.json: invalid JSON: {exc}") from None
    return parse(doc), doc
