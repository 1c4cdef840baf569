"""Sign-off: PVT corners (:mod:`.corners`, :mod:`.cornerrun`), Monte Carlo yield (:mod:`.mc`, :mod:`.yieldrun`)
and local sensitivities (:mod:`.sensitivity`, :mod:`.sensrun`). Pure math lives apart from what simulates or writes
files; :mod:`.commands` holds ``zoaf yield``/``zoaf sensitivity``, :mod:`.show` and :mod:`.plots` their output,
:mod:`.rundir` the finished run they read back."""
