"""The runtime-spec configuration (config.json) as typed records.

:func:`load` parses a bundle's config.json and checks what the runtime relies on: required fields
and their types. Full validation against the JSON Schema is ``ocirt check``; this stays cheap so
that ``create`` never imports jsonschema.
"""

from __future__ import annotations

import os

from . import jsonio
from .errors import ConfigError

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

_UINT32 = (1 << 32) - 1


class _Reader:
    """Typed access to one JSON object, naming the JSON pointer of anything wrong."""

    def __init__(self, obj: Any, pointer: str) -> None:
        if not isinstance(obj, dict):
            raise ConfigError(f"config.json: {pointer or '/'} must be an object")
        self.obj = obj
        self.pointer = pointer

    def _fail(self, key: str, what: str) -> ConfigError:
        return ConfigError(f"config.json: {self.pointer}/{key} must be {what}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None,
            required: bool = False) -> Any:
        if key not in self.obj or self.obj[key] is None:
            if required:
                raise ConfigError(f"config.json: {self.pointer}/{key} is required")
            return default
        value = self.obj[key]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise self._fail(key, "an integer")
        if not isinstance(value, kind):
            name = {str: "a string", bool: "a boolean", list: "an array", dict: "an object",
                    int: "an integer"}.get(kind if isinstance(kind, type) else str, "valid")
            raise self._fail(key, name)
        return value

    def uint(self, key: str, default: int | None = None, required: bool = False,
             limit: int = _UINT32) -> int | None:
        value = self.get(key, int, default, required)
        if value is not None and not 0 <= value <= limit:
            raise self._fail(key, f"an integer between 0 and {limit}")
        return value

    def strings(self, key: str) -> list[str]:
        value = self.get(key, list, [])
        if not all(isinstance(v, str) for v in value):
            raise self._fail(key, "an array of strings")
        return list(value)

    def str_map(self, key: str) -> dict[str, str]:
        value = self.get(key, dict, {})
        if not all(isinstance(v, str) for v in value.values()):
            raise self._fail(key, "an object of strings")
        return dict(value)

    def objects(self, key: str) -> list[_Reader]:
        return [_Reader(v, f"{self.pointer}/{key}/{i}") for i, v in enumerate(self.get(key, list, []))]

    def child(self, key: str) -> _Reader | None:
        value = self.get(key, dict)
        return None if value is None else _Reader(value, f"{self.pointer}/{key}")


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
        raise ConfigError(f"config.json: {pointer} must be an absolute path: {path!r}")
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


def check_strings(value: Any, pointer: str = "") -> None:
    """Refuse strings no system call can take: a NUL byte, or a lone surrogate (a ``\\ud800``
    escape) that has no UTF-8 encoding. Keys and values, at any depth."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ConfigError(f"config.json: {pointer or '/'}: string contains a NUL byte")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ConfigError(f"config.json: {pointer or '/'}: string is not valid "
                              "UTF-8") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            name = key.encode(errors="backslashreplace").decode().replace("\x00", "\\x00")
            check_strings(key, f"{pointer}/{name}")
            check_strings(item, f"{pointer}/{name}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_strings(item, f"{pointer}/{i}")


def parse_process(doc: Any, pointer: str = "/process") -> Process:
    """A process object (config.json's ``process``, or ``exec --process``'s file)."""
    check_strings(doc, pointer)
    return _process(_Reader(doc, pointer))


def _process(r: _Reader) -> Process:
    args = r.strings("args")
    if not args:
        raise ConfigError("config.json: /process/args must not be empty")
    cwd = _absolute(r.get("cwd", str, required=True), "/process/cwd")
    size = r.child("consoleSize")
    user_r = r.child("user")
    user = User()
    if user_r is not None:
        gids = user_r.get("additionalGids", list, [])
        if not all(isinstance(g, int) and not isinstance(g, bool) and 0 <= g <= _UINT32
                   for g in gids):
            raise ConfigError("config.json: /process/user/additionalGids must be an array of uint32")
        user = User(uid=user_r.uint("uid", required=True) or 0,
                    gid=user_r.uint("gid", required=True) or 0,
                    umask=user_r.uint("umask"), additional_gids=gids)
    rlimits = []
    for rl in r.objects("rlimits"):
        kind = rl.get("type", str, required=True)
        limit = (1 << 64) - 1
        rlimits.append(Rlimit(kind, rl.uint("soft", required=True, limit=limit) or 0,
                              rl.uint("hard", required=True, limit=limit) or 0))
    caps_r = r.child("capabilities")
    caps = None
    if caps_r is not None:
        caps = Capabilities(*(caps_r.strings(k) for k in
                              ("bounding", "effective", "inheritable", "permitted", "ambient")))
    oom = r.get("oomScoreAdj", int)
    if oom is not None and not -1000 <= oom <= 1000:
        raise ConfigError("config.json: /process/oomScoreAdj must be between -1000 and 1000")
    return Process(
        args=args, cwd=cwd, terminal=r.get("terminal", bool, False),
        console_size=None if size is None else (size.uint("height", required=True) or 0,
                                                size.uint("width", required=True) or 0),
        env=r.strings("env"), user=user, rlimits=rlimits, capabilities=caps,
        no_new_privileges=r.get("noNewPrivileges", bool, False), oom_score_adj=oom,
        apparmor_profile=r.get("apparmorProfile", str, ""),
        selinux_label=r.get("selinuxLabel", str, ""), io_priority=_io_priority(r),
        scheduler=_scheduler(r), exec_cpu_affinity=r.str_map("execCPUAffinity") or None)


IO_CLASSES = ("IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE")
SCHED_POLICIES = ("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO",
                  "SCHED_IDLE", "SCHED_DEADLINE")


def _io_priority(r: _Reader) -> tuple[str, int] | None:
    io = r.child("ioPriority")
    if io is None:
        return None
    klass = io.get("class", str, required=True)
    if klass not in IO_CLASSES:
        raise ConfigError(f"config.json: /process/ioPriority/class: unknown class {klass!r}")
    priority = io.uint("priority", 0) or 0
    if priority > 7:
        raise ConfigError("config.json: /process/ioPriority/priority must be between 0 and 7")
    return klass, priority


def _scheduler(r: _Reader) -> dict[str, Any] | None:
    sched = r.child("scheduler")
    if sched is None:
        return None
    policy = sched.get("policy", str, required=True)
    if policy not in SCHED_POLICIES:
        raise ConfigError(f"config.json: /process/scheduler/policy: unknown policy {policy!r}")
    return dict(sched.obj)


def _mappings(r: _Reader, key: str) -> list[IDMapping]:
    return [IDMapping(m.uint("containerID", required=True) or 0, m.uint("hostID", required=True) or 0,
                      m.uint("size", required=True) or 0) for m in r.objects(key)]


def _linux(r: _Reader) -> Linux:
    namespaces = []
    seen = set()
    for ns in r.objects("namespaces"):
        kind = ns.get("type", str, required=True)
        if kind not in NAMESPACE_TYPES:
            raise ConfigError(f"config.json: {ns.pointer}/type: unknown namespace type {kind!r}")
        if kind in seen:
            raise ConfigError(f"config.json: duplicate namespace type {kind!r}")
        seen.add(kind)
        path = ns.get("path", str, "")
        if path:
            _absolute(path, f"{ns.pointer}/path")
        namespaces.append(Namespace(kind, path))
    offsets = {}
    time_r = r.child("timeOffsets")
    if time_r is not None:
        for clock in ("monotonic", "boottime"):
            c = time_r.child(clock)
            if c is not None:
                offsets[clock] = (c.get("secs", int, 0), c.uint("nanosecs", 0) or 0)
    devices = []
    for d in r.objects("devices"):
        kind = d.get("type", str, required=True)
        if kind not in ("c", "b", "u", "p"):
            raise ConfigError(f"config.json: {d.pointer}/type: unknown device type {kind!r}")
        path = _absolute(d.get("path", str, required=True), f"{d.pointer}/path")
        path = "/" + os.path.normpath(path).lstrip("/")  # "/dev//fuse/" is /dev/fuse (as runc)
        if path == "/":
            raise ConfigError(f"config.json: {d.pointer}/path: a device cannot be /")
        devices.append(Device(kind, path,
                              d.get("major", int, 0), d.get("minor", int, 0), d.uint("fileMode"),
                              d.uint("uid"), d.uint("gid")))
    propagation = r.get("rootfsPropagation", str, "")
    if propagation not in PROPAGATIONS:
        raise ConfigError(f"config.json: /linux/rootfsPropagation: unknown propagation {propagation!r}")
    return Linux(
        namespaces=namespaces, uid_mappings=_mappings(r, "uidMappings"),
        gid_mappings=_mappings(r, "gidMappings"), time_offsets=offsets, devices=devices,
        cgroups_path=r.get("cgroupsPath", str, ""), resources=r.get("resources", dict, {}),
        sysctl=r.str_map("sysctl"), seccomp=r.get("seccomp", dict),
        rootfs_propagation=propagation,
        masked_paths=[_absolute(p, "/linux/maskedPaths") for p in r.strings("maskedPaths")],
        readonly_paths=[_absolute(p, "/linux/readonlyPaths") for p in r.strings("readonlyPaths")],
        mount_label=r.get("mountLabel", str, ""), personality=_personality(r),
        intel_rdt=r.get("intelRdt", dict))


def _personality(r: _Reader) -> dict[str, Any] | None:
    p = r.child("personality")
    if p is None:
        return None
    domain = p.get("domain", str, required=True)
    if domain not in ("LINUX", "LINUX32"):
        raise ConfigError(f"config.json: /linux/personality/domain: unknown domain {domain!r}")
    return dict(p.obj)


def parse(doc: Any) -> Spec:
    """Build a :class:`Spec` from decoded config.json, or raise ConfigError naming the field."""
    check_strings(doc)
    r = _Reader(doc, "")
    root_r = r.child("root")
    if root_r is None:
        raise ConfigError("config.json: /root is required")
    mounts = []
    for m in r.objects("mounts"):
        mounts.append(Mount(_absolute(m.get("destination", str, required=True),
                                      f"{m.pointer}/destination"),
                            m.get("type", str, ""), m.get("source", str, ""), m.strings("options")))
    hooks: dict[str, list[Hook]] = {}
    hooks_r = r.child("hooks")
    if hooks_r is not None:
        for kind in HOOK_KINDS:
            entries = []
            for h in hooks_r.objects(kind):
                timeout = h.get("timeout", int)
                if timeout is not None and timeout <= 0:
                    raise ConfigError(f"config.json: {h.pointer}/timeout must be positive")
                entries.append(Hook(_absolute(h.get("path", str, required=True), f"{h.pointer}/path"),
                                    h.strings("args"), h.strings("env"), timeout))
            if entries:
                hooks[kind] = entries
    process_r = r.child("process")
    linux_r = r.child("linux")
    return Spec(
        oci_version=r.get("ociVersion", str, required=True),
        root=Root(root_r.get("path", str, required=True), root_r.get("readonly", bool, False)),
        process=None if process_r is None else _process(process_r),
        mounts=mounts, hostname=r.get("hostname", str, ""), domainname=r.get("domainname", str, ""),
        hooks=hooks, annotations=r.str_map("annotations"),
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
    except ValueError as exc:
        raise ConfigError(f"config.json: invalid JSON: {exc}") from None
    return parse(doc), doc
