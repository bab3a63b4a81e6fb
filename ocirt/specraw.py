"""The checks of the config.json members that ocirt keeps as raw JSON (``linux.resources``,
``linux.seccomp``, ``linux.intelRdt``, ``linux.memoryPolicy``, ``linux.netDevices``,
``process.scheduler``): their shape, as the schema states it, checked while parsing so that the
code that uses them later (cgroup writes, the seccomp compiler, the init) meets only values of
the right type and range. See :mod:`ocirt.specread` for why this is not jsonschema.
"""

from __future__ import annotations

from .specread import INT32, UINT64, Reader, cpu_list, page_size

SCHED_POLICIES = ("SCHED_OTHER", "SCHED_FIFO", "SCHED_RR", "SCHED_BATCH", "SCHED_ISO",
                  "SCHED_IDLE", "SCHED_DEADLINE")
SCHED_FLAGS = ("SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM", "SCHED_FLAG_DL_OVERRUN",
               "SCHED_FLAG_KEEP_POLICY", "SCHED_FLAG_KEEP_PARAMS", "SCHED_FLAG_UTIL_CLAMP_MIN",
               "SCHED_FLAG_UTIL_CLAMP_MAX")
# seccomp's names and their values (ocirt.seccomp compiles with them)
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000, "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_NOTIFY": 0x7FC00000,
}
OPERATORS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
             "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
ARCHES = {
    "SCMP_ARCH_X86": "X86", "SCMP_ARCH_X86_64": "X86_64", "SCMP_ARCH_X32": "X32",
    "SCMP_ARCH_ARM": "ARM", "SCMP_ARCH_AARCH64": "AARCH64", "SCMP_ARCH_MIPS": "MIPS",
    "SCMP_ARCH_MIPS64": "MIPS64", "SCMP_ARCH_MIPS64N32": "MIPS64N32",
    "SCMP_ARCH_MIPSEL": "MIPSEL", "SCMP_ARCH_MIPSEL64": "MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32": "MIPSEL64N32", "SCMP_ARCH_PPC": "PPC", "SCMP_ARCH_PPC64": "PPC64",
    "SCMP_ARCH_PPC64LE": "PPC64LE", "SCMP_ARCH_S390": "S390", "SCMP_ARCH_S390X": "S390X",
    "SCMP_ARCH_PARISC": "PARISC", "SCMP_ARCH_PARISC64": "PARISC64",
    "SCMP_ARCH_RISCV64": "RISCV64",
}
#: filter flags of seccomp(2) by their spec names
FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2,
         "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32}
SECCOMP_ACTIONS = tuple(ACTIONS)
SECCOMP_OPERATORS = tuple(OPERATORS)
MPOL_MODES = ("MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
              "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL")
MPOL_FLAGS = ("MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES", "MPOL_F_NUMA_BALANCING")



def _enums(r: Reader, key: str, choices: tuple[str, ...], what: str) -> None:
    for i, item in enumerate(r.strings(key)):
        if item not in choices:
            raise r.fail_item(key, i, f"unknown {what} {item!r}")


def scheduler(r: Reader) -> None:
    r.enum("policy", SCHED_POLICIES, "policy", required=True)
    r.integer("nice", *INT32)
    r.integer("priority", *INT32)
    _enums(r, "flags", SCHED_FLAGS, "flag")
    for key in ("runtime", "deadline", "period"):
        r.uint(key, limit=UINT64)


def cpu_affinity(r: Reader) -> dict[str, str]:
    out = {}
    for key in ("initial", "final"):
        value = r.get(key, str)
        if value is not None:
            if not cpu_list(value):
                raise r.fail(key, f"must be a CPU list such as '0-3,7', not {value!r}")
            out[key] = value
    return out


def _blkio_weight(r: Reader, key: str) -> None:
    value = r.get(key, int)
    if value is not None and value != 0 and not 10 <= value <= 1000:
        raise r.fail(key, "must be 0 or between 10 and 1000")


def _major_minor(r: Reader) -> None:
    r.int64("major", required=True)
    r.int64("minor", required=True)


def resources(r: Reader) -> None:
    """linux.resources (and ``ocirt update``'s resources)."""
    for rule in r.objects("devices"):
        rule.get("allow", bool, required=True)
        rule.enum("type", ("a", "b", "c"), "device type")
        rule.int64("major")
        rule.int64("minor")
        access = rule.get("access", str, "")
        if access and not any(c in "rwm" for c in access):
            # runc drops other letters ("rwa" is "rw"), but a rule left with none is an error
            raise rule.fail("access", f"must have one of the letters r, w and m, not {access!r}")
    mem = r.child("memory")
    if mem is not None:
        for key in ("limit", "reservation", "swap", "kernel", "kernelTCP"):
            mem.int64(key)
        mem.uint("swappiness", limit=UINT64)
        for key in ("disableOOMKiller", "useHierarchy", "checkBeforeUpdate"):
            mem.get(key, bool)
    cpu = r.child("cpu")
    if cpu is not None:
        for key in ("shares", "burst", "period", "realtimePeriod"):
            cpu.uint(key, limit=UINT64)
        for key in ("quota", "realtimeRuntime", "idle"):
            cpu.int64(key)
        cpu.get("cpus", str)
        cpu.get("mems", str)
    pids = r.child("pids")
    if pids is not None:
        pids.int64("limit", required=True)
    bio = r.child("blockIO")
    if bio is not None:
        _blkio_weight(bio, "weight")
        _blkio_weight(bio, "leafWeight")
        for dev in bio.objects("weightDevice"):
            _major_minor(dev)
            _blkio_weight(dev, "weight")
            _blkio_weight(dev, "leafWeight")
            if dev.obj.get("weight") is None and dev.obj.get("leafWeight") is None:
                raise dev.fail_here("needs 'weight' or 'leafWeight' (or both)")
        for key in ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
                    "throttleWriteIOPSDevice"):
            for dev in bio.objects(key):
                _major_minor(dev)
                dev.uint("rate", required=True, limit=UINT64)
    for page in r.objects("hugepageLimits"):
        size = page.get("pageSize", str, required=True)
        if not page_size(size):
            raise page.fail("pageSize", f"must be a page size such as '2MB', not {size!r}")
        page.uint("limit", required=True, limit=UINT64)
    net = r.child("network")
    if net is not None:
        net.uint("classID")
        for prio in net.objects("priorities"):
            prio.get("name", str, required=True)
            prio.uint("priority", required=True)
    rdma = r.child("rdma")
    if rdma is not None:
        for name in rdma.obj:
            hca = rdma.child(name)
            if hca is None:
                raise rdma.fail(name, "must be an object")
            hca.uint("hcaHandles")
            hca.uint("hcaObjects")
            if hca.obj.get("hcaHandles") is None and hca.obj.get("hcaObjects") is None:
                raise hca.fail_here("needs 'hcaHandles' or 'hcaObjects' (or both)")
    r.str_map("unified")


def seccomp(r: Reader) -> None:
    r.enum("defaultAction", SECCOMP_ACTIONS, "action", required=True)
    r.uint("defaultErrnoRet")
    _enums(r, "architectures", tuple(ARCHES), "architecture")
    _enums(r, "flags", tuple(FLAGS), "flag")
    listener = r.get("listenerPath", str, "")
    if r.get("listenerMetadata", str) is not None and r.obj.get("listenerPath") is None:
        raise r.fail("listenerPath", "is required when 'listenerMetadata' is set")
    notify = r.obj["defaultAction"] == "SCMP_ACT_NOTIFY"
    for rule in r.objects("syscalls"):
        names = rule.strings("names", bool, "a syscall name")
        if not names:
            raise rule.fail("names", "must not be empty" if "names" in rule.obj and
                            rule.obj["names"] is not None else "is required")
        notify = rule.enum("action", SECCOMP_ACTIONS, "action",
                           required=True) == "SCMP_ACT_NOTIFY" or notify
        rule.uint("errnoRet")
        for arg in rule.objects("args"):
            arg.integer("index", 0, 5, required=True)
            arg.uint("value", required=True, limit=UINT64)
            arg.uint("valueTwo", limit=UINT64)
            arg.enum("op", SECCOMP_OPERATORS, "operator", required=True)
    if notify and not listener:
        raise r.fail("listenerPath", "is required with SCMP_ACT_NOTIFY")


def intel_rdt(r: Reader) -> None:
    for key in ("closID", "l3CacheSchema"):
        r.get(key, str)
    bw = r.get("memBwSchema", str)
    if bw is not None and not bw.startswith("MB:"):
        raise r.fail("memBwSchema", "must start with 'MB:'")
    schemata = r.obj.get("schemata")
    if schemata is not None and not isinstance(schemata, str):
        if not (isinstance(schemata, list) and all(isinstance(s, str) for s in schemata)):
            raise r.fail("schemata", "must be a string or an array of strings")
    for key in ("enableCMT", "enableMBM"):
        r.get(key, bool)


def memory_policy(r: Reader) -> None:
    r.enum("mode", MPOL_MODES, "mode", required=True)
    r.get("nodes", str)
    _enums(r, "flags", MPOL_FLAGS, "flag")


def net_devices(r: Reader) -> None:
    for name in r.obj:
        if not name:
            raise r.fail_here("device names must not be empty")
        dev = r.child(name)
        if dev is None:
            raise r.fail(name, "must be an object")
        dev.get("name", str)
