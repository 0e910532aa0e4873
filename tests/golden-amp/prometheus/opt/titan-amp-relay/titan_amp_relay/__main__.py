# golden: root:root 0644
"""``python3 -m titan_amp_relay``: serve with the settings in the environment (the unit's env file)."""
import sys

from titan_amp_relay.server import main

sys.exit(main())
