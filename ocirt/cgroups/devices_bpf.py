"""Device rules on cgroup v2: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE.

cgroup v2 has no devices controller; the kernel asks a BPF program attached to the cgroup
instead. The program built here gives the same answers as cgroup v1 would after the rules were
written to devices.allow / devices.deny in order: the last rule that decides a request wins, a
type ``a`` rule resets everything, and a cgroup starts out allowing every device.
"""

from __future__ import annotations

import ctypes
import os
import struct

from ..errors import SysError

TYPE_CHECKING = False  # not typing's: importing typing costs milliseconds per command
if TYPE_CHECKING:
    from typing import Any

_BPF_NR = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine, -1)
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH = 5, 8, 9
BPF_PROG_GET_FD_BY_ID, BPF_PROG_QUERY = 13, 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
_DEV_TYPE = {"b": 1, "c": 2}                 # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
_ACCESS = {"m": 1, "r": 2, "w": 4}           # BPF_DEVCG_ACC_MKNOD, READ, WRITE

# instruction opcodes (linux/bpf.h)
_LDX_W, _MOV_X, _MOV_K, _AND_K, _RSH_K = 0x61, 0xBF, 0xB7, 0x57, 0x77
_JNE_K, _JEQ_K, _EXIT = 0x55, 0x15, 0x95


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _access(text: str | None) -> int:
    return sum(_ACCESS[c] for c in set(text or "rwm") if c in _ACCESS)


def _rule_block(rule: dict[str, Any]) -> list[tuple[int, int, int, int, int]]:
    """Instructions for one rule; a (code, dst, src, "next", imm) tuple jumps past the block."""
    allow = 1 if rule.get("allow") else 0
    kind = rule.get("type") or "a"
    access = _access(rule.get("access"))
    if kind == "a":
        return [(_MOV_K, 0, 0, 0, allow), (_EXIT, 0, 0, 0, 0)]
    block: list[tuple[int, int, int, int, int]] = [(_JNE_K, 3, 0, -1, _DEV_TYPE.get(kind, 0))]
    major, minor = rule.get("major"), rule.get("minor")
    if major is not None and major >= 0:
        block.append((_JNE_K, 5, 0, -1, major))
    if minor is not None and minor >= 0:
        block.append((_JNE_K, 6, 0, -1, minor))
    block.append((_MOV_X, 7, 4, 0, 0))
    if allow:   # decides only if it grants every access asked for
        block += [(_AND_K, 7, 0, 0, ~access & 7), (_JNE_K, 7, 0, -1, 0)]
    else:       # decides as soon as it takes away any access asked for
        block += [(_AND_K, 7, 0, 0, access), (_JEQ_K, 7, 0, -1, 0)]
    block += [(_MOV_K, 0, 0, 0, allow), (_EXIT, 0, 0, 0, 0)]
    return block


def program(rules: list[dict[str, Any]]) -> bytes:
    """The BPF program for ``rules`` (config order; evaluated last to first)."""
    out = [
        _insn(_LDX_W, 2, 1, 0),        # r2 = ctx->access_type
        _insn(_MOV_X, 3, 2), _insn(_AND_K, 3, imm=0xFFFF),   # r3 = device type
        _insn(_MOV_X, 4, 2), _insn(_RSH_K, 4, imm=16),       # r4 = access
        _insn(_LDX_W, 5, 1, 4),        # r5 = ctx->major
        _insn(_LDX_W, 6, 1, 8),        # r6 = ctx->minor
    ]
    for rule in reversed(rules):
        block = _rule_block(rule)
        for i, (code, dst, src, off, imm) in enumerate(block):
            if off == -1:
                off = len(block) - i - 1
            out.append(_insn(code, dst, src, off, imm))
        if (rule.get("type") or "a") == "a":
            return b"".join(out)          # nothing before a reset can matter
    out += [_insn(_MOV_K, 0, imm=1), _insn(_EXIT)]  # a new cgroup allows every device
    return b"".join(out)


def _bpf(cmd: int, attr: bytes) -> int:
    buf = ctypes.create_string_buffer(attr, 128)
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.syscall(_BPF_NR, cmd, buf, 128)
    if result < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    if cmd == BPF_PROG_QUERY:
        _bpf.last_query = buf.raw  # type: ignore[attr-defined]
    return int(result)


def load(code: bytes) -> int:
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"Apache-2.0")
    attr = struct.pack("<IIQQIIQII16s", BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8,
                       ctypes.addressof(insns), ctypes.addressof(license_), 0, 0, 0, 0, 0,
                       b"ocirt_devices")
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except OSError as exc:
        raise SysError("load the cgroup device program", exc.errno or 0) from None


def _attached(cgroup_fd: int) -> list[int]:
    ids = (ctypes.c_uint32 * 64)()
    attr = struct.pack("<IIIIQI", cgroup_fd, BPF_CGROUP_DEVICE, 0, 0, ctypes.addressof(ids), 64)
    try:
        _bpf(BPF_PROG_QUERY, attr)
    except OSError:
        return []
    count = struct.unpack_from("<I", _bpf.last_query, 24)[0]  # type: ignore[attr-defined]
    return list(ids[:count])


def apply(cgroup_dir: str, rules: list[dict[str, Any]]) -> None:
    """Attach the program for ``rules`` to the cgroup, replacing any device program from an
    earlier call (the new one is attached first, so there is no moment without rules)."""
    prog = load(program(rules))
    cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        old = _attached(cgroup_fd)
        try:
            _bpf(BPF_PROG_ATTACH, struct.pack("<IIII", cgroup_fd, prog, BPF_CGROUP_DEVICE,
                                              BPF_F_ALLOW_MULTI))
        except OSError as exc:
            raise SysError(f"attach the device program to {cgroup_dir}", exc.errno or 0) \
                from None
        for prog_id in old:
            try:
                old_fd = _bpf(BPF_PROG_GET_FD_BY_ID, struct.pack("<I", prog_id))
            except OSError:
                continue
            try:
                _bpf(BPF_PROG_DETACH, struct.pack("<IIII", cgroup_fd, old_fd,
                                                  BPF_CGROUP_DEVICE, 0))
            except OSError:
                pass
            finally:
                os.close(old_fd)
    finally:
        os.close(cgroup_fd)
        os.close(prog)
