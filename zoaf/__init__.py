"""zoaf: zeroth-order sizing of analog/RF circuits over in-process ngspice simulations."""
__version__ = "0.1.0"

from .errors import (ConvergenceError, DeckFailure, InputError, MeasureError, ParseError, SimulationError, Timeout,
                     ZoafError, ZoafWarning)
from .optim import Optimizer, Result, StopReason
from .function import FunctionProblem
from .problem import Outcome, Parameter, Problem, Status
from .run import minimize, optimize

__all__ = ["ConvergenceError", "DeckFailure", "FunctionProblem", "InputError", "MeasureError", "Optimizer",
           "Outcome", "Parameter", "ParseError", "Problem", "Result", "SimulationError", "Status", "StopReason",
           "Timeout", "ZoafError", "ZoafWarning", "minimize", "optimize", "__version__"]
