"""The `delve-bridge` command (placeholder until the bridge lands)."""
import sys


def main(argv=None):
    print("delve-bridge: not implemented yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
