"""ocirt: a runc-compatible OCI container runtime."""

__version__ = "0.1.0"
#: The runtime-spec version this runtime implements (reported by --version, features and spec).
SPEC_VERSION = "1.2.0"
