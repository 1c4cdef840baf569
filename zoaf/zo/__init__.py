"""The ZOAF method: estimators, multi-start, monitor, schedules and the optimizer that ties them together."""
from .config import ZOAFConfig
from .optimizer import ZOAF

__all__ = ["ZOAF", "ZOAFConfig"]
