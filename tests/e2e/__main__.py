"""``python -m tests.e2e`` (inside the project's venv, from the repository root): the whole E2E run."""

import sys

from tests.e2e.run import main

sys.exit(main())
