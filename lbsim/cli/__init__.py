"""The ``lbsim`` command: one module per group of subcommands; :func:`main` is the entry point."""

from lbsim.cli.main import main

__all__ = ["main"]
