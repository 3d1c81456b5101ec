"""`python -m ladder_cli` is the `ladder` command (for environments without the console script)."""

import sys

from ladder_cli.main import main

sys.exit(main())
