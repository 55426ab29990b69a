import sys

from delve_bridge.cli import main

sys.exit(main())
