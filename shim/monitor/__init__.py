"""The per-container monitor: Debian's conmon, driven through its command line as podman does."""
