"""The run/create flags for users, security and resources, applied to the config.json that
spec.generate made: called when the container's rootfs is mounted (user names are resolved in
the image's own files), at each (re)creation, from the options recorded at ``create`` (and
changed by ``update``)."""

from __future__ import annotations

from typing import Any

from . import resources, security, users

INIT_PATH = "/run/ocish-init"  # where --init's tini is bind-mounted (podman: /run/podman-init)
INIT_BINARY = "/usr/bin/tini-static"  # Debian's tini, static: runs in any image


def apply(config: dict[str, Any], opts: dict[str, Any], rootfs: str) -> None:
    """Change *config* for the flags recorded in *opts*."""
    proc, linux = config["process"], config["linux"]
    user = users.resolve(rootfs, opts.get("user") or "", opts.get("group_add") or [])
    proc["user"] = {k: v for k, v in user.items() if k != "home"}
    if not any(e.startswith("HOME=") for e in proc["env"]):
        proc["env"].append(f"HOME={user['home']}")  # as Docker: the user's home
    privileged = bool(opts.get("privileged"))
    default = proc["capabilities"]["bounding"]
    caps = security.capabilities(default, opts.get("cap_add") or [], opts.get("cap_drop") or [],
                                 privileged)
    proc["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps}
    if "seccomp" in linux and caps != default:  # the profile's rules depend on the caps
        from .seccomp import load, to_spec

        linux["seccomp"] = to_spec(load(opts["seccomp"]), caps)
    if privileged:
        security.make_privileged(config)
    if opts.get("read_only"):
        config["root"]["readonly"] = True
    if opts.get("ulimits"):
        proc["rlimits"] = opts["ulimits"]
    if opts.get("oom_score_adj") is not None:
        proc["oomScoreAdj"] = opts["oom_score_adj"]
    if opts.get("sysctls"):
        linux["sysctl"] = opts["sysctls"]
    if opts.get("devices"):
        nodes, rules = resources.device_rules(opts["devices"])
        paths = {n["path"] for n in nodes}  # --device's own wins over --privileged's
        linux["devices"] = [d for d in linux.get("devices") or [] if d["path"] not in paths] \
            + nodes
        if not privileged:
            linux["resources"]["devices"] += rules
    linux["resources"].update(opts.get("resources") or {})
    if opts.get("shm_size"):
        for m in config["mounts"]:
            if m["destination"] == "/dev/shm":
                m["options"] = [o for o in m["options"] if not o.startswith("size=")] + \
                    [f"size={opts['shm_size']}"]
    if opts.get("init"):
        config["mounts"].append({"destination": INIT_PATH, "type": "bind",
                                 "source": INIT_BINARY, "options": ["rbind", "ro", "nosuid",
                                                                    "nodev"]})
        proc["args"] = [INIT_PATH, "--", *proc["args"]]


def extra_hosts(opts: dict[str, Any]) -> str:
    """The lines ``--add-host`` adds to the generated /etc/hosts."""
    return "".join(f"{ip}\t{name}\n" for name, ip in opts.get("add_hosts") or [])
