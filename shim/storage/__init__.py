"""Storage under the root: layout, sqlite metadata, the content store, snapshots, layer unpacking."""
