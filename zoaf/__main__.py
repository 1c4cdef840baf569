"""``python -m zoaf``: the ``zoaf`` command line (:mod:`zoaf.cli`) without the installed script."""
from .cli import main

main()
