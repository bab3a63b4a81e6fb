"""The runc command-line driver: ocish speaks only the runc CLI contract to whatever runtime
``--runtime`` names (ocirt by default, runc works the same)."""
