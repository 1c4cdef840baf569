"""Baseline optimizers (BO, TuRBO, CMA-ES, DE, random) on the same ask/tell protocol as ZOAF."""
