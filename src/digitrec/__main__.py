"""`python -m digitrec`: the command line, as the `digitrec` script runs it."""

import sys

from digitrec.cli import main

sys.exit(main())
