"""``python -m fairaudit``: the command-line entry point."""

from fairaudit.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
