"""Command-line parsing only: runc's commands, flags and output formats, one module a command."""
