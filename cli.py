"""Launch the zoaf CLI from a checkout (`python cli.py ...`); the real app is `zoaf/cli.py`."""
from zoaf.cli import main

if __name__ == "__main__":
    main()
