"""The container lifecycle: one module per operation, the legal transitions in :mod:`status`."""
