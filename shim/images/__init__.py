"""Image service: pull, push, load, save, import, export, history and the image records (sqlite)."""
