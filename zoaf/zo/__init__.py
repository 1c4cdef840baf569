"""The ZOAF method: estimators, multi-start, monitor, schedules, the coordinate sweep, the constraint-aware step
(``model_step``, ``constrained``, ``acceptance``), the COBYQA local phase, and the optimizer that ties them
together (``optimizer``; its settings in ``config``, named variants in ``ablations`` and ``presets``)."""
from .config import ZOAFConfig
from .optimizer import ZOAF

__all__ = ["ZOAF", "ZOAFConfig"]
