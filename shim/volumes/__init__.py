"""Volumes (Docker's ``local`` driver): store.py keeps them (a row each and
``<root>/volumes/<name>/_data``), specs.py parses ``-v``/``--mount``/``--tmpfs``, attach.py
turns a container's mounts into volumes and config.json mounts, inroot.py copies an image's
content into a new volume without leaving the container's rootfs."""
