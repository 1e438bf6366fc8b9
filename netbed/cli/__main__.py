"""`python -m netbed.cli`: the same command as `netbed`."""
import sys

from netbed.cli import main

sys.exit(main())
