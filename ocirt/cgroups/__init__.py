"""Cgroups: finding the host's hierarchies and placing a container's processes in them."""
