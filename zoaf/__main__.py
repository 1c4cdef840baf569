"""``python -m zoaf``: the ``zoaf`` command line (:mod:`zoaf.cli`) without the installed script.

Ctrl-C while :mod:`zoaf.cli` loads is its own to report (``interrupted``, exit 130), as in the installed script,
which imports it the same way."""
from .cli import main

main()
