"""Sign-off: PVT corners (:mod:`.corners`, :mod:`.cornerrun`), Monte Carlo yield (:mod:`.mc`, :mod:`.yieldrun`)
and local sensitivities (:mod:`.sensitivity`). Pure math lives apart from what simulates or writes files."""
