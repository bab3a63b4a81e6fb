"""ocish: a Docker-style layer (images, storage, networking) driving any runc-compatible runtime."""

__version__ = "0.1.0"
