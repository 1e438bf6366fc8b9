"""The `netbed` command line: `parser` (its grammar), `commands` (one function per subcommand, each a
thin call into the stages), `progress` (what a person sees while runs take time)."""
from __future__ import annotations

from netbed.cli.commands import COMMANDS, main

__all__ = ["COMMANDS", "main"]
