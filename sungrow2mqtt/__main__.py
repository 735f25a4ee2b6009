"""Allow ``python -m sungrow2mqtt``."""
import sys

from sungrow2mqtt.cli import main

sys.exit(main())
