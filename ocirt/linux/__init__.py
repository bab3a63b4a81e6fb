"""Linux primitives: thin ctypes wrappers around the system calls Python's os module lacks."""
