"""The event log (``ocish events``): one JSON line per container or image event, appended to a
file under the storage root, as podman's ``file`` events logger does (there is no daemon to
hold a stream)."""
