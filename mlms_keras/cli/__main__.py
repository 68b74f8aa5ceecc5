"""`python -m mlms_keras.cli ...` is `mlms ...`."""

import sys

from mlms_keras.cli import main

sys.exit(main())
