"""``python -m lbsim.cli``: the same as the ``lbsim`` command."""

import sys

from lbsim.cli.main import main

sys.exit(main())
