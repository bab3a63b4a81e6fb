"""The container service: records, bundles, rootfs mounts, state, logs (cli -> containers ->
runtime, monitor, storage, images)."""
