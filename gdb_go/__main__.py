import sys

from gdb_go.cli import main

sys.exit(main())
