"""``python -m ilrl_ros.cli``: the ``ilrl`` command."""

import sys

from ilrl_ros.cli import main

sys.exit(main())
