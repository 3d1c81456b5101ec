"""The `ladder` command. Each area registers its subcommands from its own module (cmd_*.py), and
imports its heavy stack lazily inside the command, so `ladder validate` never loads JAX."""
