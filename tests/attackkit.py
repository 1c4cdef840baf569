"""What the attack tests share: the one-measure specs their decks are simulated with."""
from __future__ import annotations

#: A spec for a deck with one parameter ``r1`` and one measure ``leak`` (tests rename it: ``vo``, ``i``).
SPEC = """title = "reads a file"
[parameters]
r1 = { lo = "100", hi = "10k" }
[measures]
leak = {}
[objectives]
o = { maximize = "leak" }
"""

#: A one-measure spec for the program decks (``vo``: the divider's output, which each deck prints).
DIVIDER_SPEC = """title = "a divider"
[parameters]
r1 = { lo = "100", hi = "10k" }
[measures]
vo = {}
[objectives]
o = { maximize = "vo" }
"""
