"""Which node voltages ``ngspice -b`` keeps for a deck's ``.meas`` cards: pure text checks, no ngspice.

In batch mode ngspice saves only the vectors that the deck's ``.save``, ``.print``/``.plot`` and ``.meas`` cards
name, and its ``.meas`` reader takes ``v(out)`` as a name but not ``vdb(out)``, ``vm(out)``, ``vp(out)``...
(ngspice 39.3: "can't parse 'vd': ignored"). A deck whose ``.meas`` cards read ``vdb(out)`` and that names
``v(out)`` nowhere else measures nothing in ``ngspice -b``: with no vector saved at all the analysis does not
run ("no data saved"), with others saved the card fails ("no such vector as v(out)"). zoaf's session honours
``.save`` cards but, where there are none, keeps every vector and measures it, so the sized deck
(``best.cir``), run by hand, would not print what zoaf reported: :class:`zoaf.netlist.Netlist` keeps a note
with the card's line and the one-line fix (:func:`unsaved_node`), which ``zoaf check`` and ``zoaf simulate``
show. A note, not a refusal: the deck is sized as written, and many decks are only ever run in zoaf.

A ``.control`` block changes nothing: its own analyses save every vector, as the interactive ngspice does,
but ``ngspice -b`` runs the dot-analyses again after the block (a deck with ``.meas`` cards), saving as above,
and that run fails ("no data saved", or "no such vector" and a card printed as 0). Only what was measured is
noted; everything uncertain is let through: a block with ``save`` or ``quit``, ``.options savecurrents``,
differential ``vdb(a,b)`` (which batch ``.meas`` cannot read even when both nodes are saved). A deck with
``.save`` cards gets no note: zoaf's session adds the vectors batch mode adds to them (:func:`batch_extra_saves`),
so it saves what ``ngspice -b`` saves and misses the same measures.

The same batch run saves nothing for a ``.pz``, ``.tf`` or ``.disto`` card of a deck without ``.save`` cards (no
``.meas``/``.print`` card names their vectors): "no data saved for pole-zero analysis" after the ``.control``
block's results (exit status 0), "run simulation(s) aborted" for ``.tf`` beside ``.op`` (exit status 1), a crash
for ``.disto`` (ngspice 39). No result comes from that run (a ``.meas`` card cannot read those analyses), and the
block's own runs save everything: :func:`zoaf.ngbatch.run_batch` ignores that one line where nothing limits what
is saved (:data:`UNSAVED_ANALYSIS`, :func:`limits_saves`), and :func:`unsaved_analysis` notes the card.

A ``.four`` card's fundamental is read as a plain number: the line is not substituted, so ``.four {f0} v(out)``
(or ``'f0'``, ``f0``) makes ``ngspice -b`` print "Error: bad fundamental freq {f0}" and no Fourier table, then
the measures as usual (exit status 0). The table is no result zoaf reads (the session runs no ``.four`` card), so
:func:`zoaf.ngbatch.run_batch` ignores that line (:data:`BAD_FUNDAMENTAL`) and :func:`unread_four` notes the card.

``ngspice -b`` runs the dot-analyses at all only when a ``.print``/``.plot``/``.four``/``.op``/``.tf`` card, or a
``.meas`` card whose vectors it can extract, asks for output (``ft_savedotargs``): a deck whose ``.meas`` cards read
only ``@device[param]`` vectors (``.options savecurrents``, ``@m1[id]``) prints `No ".plot", ".print", or
".fourier" lines; no simulations run` and exits with status 1, while the session measures: :func:`unrun_analyses`
notes it.

A numparam random draw (``agauss`` in a ``.param``) with no ``.options seed`` differs at every run, by hand as in
zoaf: :func:`unseeded_draw` notes it.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import chain

from .decktext import Line, logical_lines, noisy_source, physical_lines
from .errors import InputError
from .units import parse

__all__ = ["BAD_FUNDAMENTAL", "UNSAVED_ANALYSIS", "batch_extra_saves", "batch_notes", "limits_saves",
           "nested_multiplier", "param_in_conditional", "unread_four", "unread_tf", "unrun_analyses",
           "unsaved_analysis", "unsaved_node", "unseeded_draw", "unseeded_noise"]

_ARGS = r"\(\s*([^,()\s]+)\s*(?:,\s*([^,()\s]+)\s*)?\)"
#: ``v(a)`` / ``v(a,b)``: names the batch ``.meas`` reader saves.
_PLAIN = re.compile(r"(?<![\w.@])v" + _ARGS)
#: ``vdb(a)``, ``vm(a)``, ...: the forms it cannot read (one node: differential ones are left alone).
_DERIVED = re.compile(r"(?<![\w.@])(v(?:db|m|p|r|i|ph))\(\s*([^,()\s]+)\s*\)")
#: Any voltage function on a ``.print``/``.plot``/``.four`` card: that reader takes them all.
_ANY_V = re.compile(r"(?<![\w.@])v(?:db|m|p|r|i|ph)?" + _ARGS)
_SAVE_WORDS = (".save", ".probe")
#: ``v(a)``, ``v(a,b)``, ``i(vdd)``: the vectors ``ngspice -b`` adds to a deck's ``.save`` list for its
#: ``.meas`` and ``.four`` cards.
_VECTOR = re.compile(r"(?<![\w.@])([vi])" + _ARGS, re.IGNORECASE)
_HAS_SAVE = re.compile(r"\n[^\S\n]*\.(save|probe)\b", re.I)
_PRINT_WORDS = (".print", ".plot", ".four", ".fourier")
_MEASURED = ("ac", "dc", "tran", "sp")
#: An output card in an included file (the deck's run by hand is then not certain).
_OUTPUT_CARD = re.compile(r"\n[^\S\n]*\.(meas|print|plot|four|op\b|tf\b)", re.I)
#: A card in an included file after which the deck's saving is not certain (as is any that :data:`_SAVE_LIMIT` finds).
_INCLUDED_SAVE = re.compile(r"\n[^\S\n]*(\.(save|probe|print|plot|four)|save\b|quit\b|exit\b)", re.I)
#: ``.control`` commands after which the check is not certain: a ``save`` (what it saves for the run after the
#: block), a ``quit`` (no run after the block: the block's own analyses save every vector).
_CONTROL_UNCERTAIN = frozenset({"save", "quit", "exit"})
#: What limits the vectors a run saves: a ``.save``/``.probe`` card, a ``save`` command (and ``savecurrents``).
_SAVE_LIMIT = re.compile(r"\n[^\S\n]*(?:\.save|\.probe|save)\b", re.I)
#: ngspice's line for a ``.pz``, ``.tf`` or ``.disto`` run that saved none of its vectors.
UNSAVED_ANALYSIS = re.compile(r"no data saved for (?:pole-zero|transfer function|small signal distortion) analysis",
                              re.IGNORECASE)
#: ngspice's line for a ``.four`` card whose fundamental is no number (:func:`unread_four`).
BAD_FUNDAMENTAL = re.compile(r"bad fundamental freq", re.IGNORECASE)
#: A vector ``ngspice -b``'s ``.meas`` reader extracts (``v(out)``, ``vdb(out)``, ``i(vdd)``), or a ``par()``.
_EXTRACTED = re.compile(r"(?<![\w.@])(?:[vi]\w*|par)\s*\(", re.IGNORECASE)
_PARAM_CARD = re.compile(r"(?<![\w.])param\s*=", re.IGNORECASE)
#: Cards after which ``ngspice -b`` runs the dot-analyses (``Netlist.batch_runs_dot_analyses``).
_OUTPUT_WORDS = (".meas", ".measure", ".op", ".tf", *_PRINT_WORDS)
#: What ``ngspice -b`` does, after printing the results, when its run of such a card saves nothing.
_UNSAVED_ENDS = {".pz": "prints `no data saved for pole-zero analysis` (exit status 0)",
                 ".tf": "stops with `run simulation(s) aborted` (exit status 1)",
                 ".disto": "crashes (segmentation fault)"}


def unsaved_node(lines: Sequence[Line], included: Sequence[str] = (), limited: bool = False
                 ) -> tuple[int, str] | None:
    """``(line, why)`` for the first ``.meas`` card that reads ``vdb(node)`` (or ``vm``, ``vp``...) of a node no
    card saves; None when there is none or the deck's saving is not certain.

    ``lines``: the deck's logical lines after the title; ``included``: the text of every included file (a save
    there makes the check uncertain); ``limited``: :func:`limits_saves` of it (``savecurrents`` there, too).
    """
    if limited or any(_has_card(_INCLUDED_SAVE, t) for t in included):
        return None
    cards, uncertain = _dot_cards(lines)
    found = None if uncertain else _first_unsaved(cards)
    if found is None:
        return None
    line, form, node = found
    if not node:           # a .meas sp card: S-parameter vectors are saved by no card but `.save all`
        return line, ("ngspice -b saves only the vectors that .save, .print and .meas v(...) cards name, and no card "
                      "but `.save all` saves the S-parameter vectors (`.save s_1_1` does not): run by hand "
                      "(best.cir), this deck's .sp analysis is not run (\"no data saved\") and measures nothing; "
                      "zoaf saves every vector and does. Add `.save all` to the deck")
    return line, (f"ngspice -b saves only the vectors that .save, .print and .meas v(...) cards name, and its "
                  f".meas reader cannot take {form}: run by hand (best.cir), this deck measures nothing here (its run "
                  f"of the dot-analyses fails, after a .control block too); "
                  f"zoaf saves every vector and does. Add `.save v({node})` (or `.save all`) to the deck")


def _dot_cards(lines: Sequence[Line]) -> tuple[list[tuple[str, str, int]], bool]:
    """The dot-cards ``(word, rest, line)`` before ``.end`` outside the ``.control`` block, and whether the block
    has a command after which what is saved is not certain (:data:`_CONTROL_UNCERTAIN`)."""
    cards, control, uncertain = [], False, False
    for ln in lines:
        word, rest = (ln.text.split(None, 1) + ["", ""])[:2]
        if word == ".end" and not control:
            break
        if control:
            control = not word.startswith(".endc")
            uncertain |= word.removeprefix("pre_") in _CONTROL_UNCERTAIN
        elif word.startswith(".control"):
            control = True
        elif word.startswith("."):
            cards.append((word, rest, ln.lineno))
    return cards, uncertain


def _first_unsaved(cards: Sequence[tuple[str, str, int]]) -> tuple[int, str, str] | None:
    saved: set[str] = set()
    derived: list[tuple[int, str, str]] = []
    run = {word[1:] for word, _, _ in cards} & set(_MEASURED)      # a card of no dot-analysis measures nothing
    for word, rest, line in cards:
        if word in _SAVE_WORDS or (word.startswith(".opt") and "savecurrents" in rest):
            return None                          # zoaf's session saves what ngspice -b saves: they agree
        if word in _PRINT_WORDS:
            saved.update(_nodes(_ANY_V, rest))
        elif word in (".meas", ".measure") and rest.split()[:1] and rest.split()[0] == "sp" and "sp" in run:
            derived.append((line, "S-parameter vectors", ""))
        elif word in (".meas", ".measure") and rest.split()[:1] and rest.split()[0] in run:
            saved.update(_nodes(_PLAIN, rest))
            derived += [(line, f"{m.group(1)}({m.group(2)})", m.group(2)) for m in _DERIVED.finditer(rest)]
    return next((d for d in derived if d[2] not in saved), None)


def _nodes(pattern: re.Pattern[str], text: str) -> list[str]:
    return [n for m in pattern.finditer(text) for n in m.groups() if n]


def batch_extra_saves(lines: Sequence[Line], included: Sequence[str] = ()) -> str | None:
    """The ``.save`` card zoaf's session adds to a deck that has ``.save`` cards (in it or an included file), so
    that the library saves what ``ngspice -b`` saves: batch mode adds every ``v(..)``/``i(..)`` a ``.meas`` or
    ``.four`` card names, and the node of each ``par()`` there (``pa_00``, ...; ``all`` then, since ngspice numbers
    them over every card). Without it a ``.meas`` of a node the ``.save`` cards leave out measured nothing in zoaf
    and its value in ``ngspice -b``. None: the deck saves everything already (no ``.save`` card)."""
    cards, _ = _dot_cards(lines)
    if not any(w in _SAVE_WORDS for w, _, _ in cards) and not any(_has_card(_HAS_SAVE, t) for t in included):
        return None
    names: list[str] = []
    for word, rest, _ in cards:
        if word in (".meas", ".measure", ".four", ".fourier"):
            if "par(" in rest.replace(" ", "").lower():
                names.append("all")
            names += [f"{m.group(1).lower()}({n})" for m in _VECTOR.finditer(rest) for n in m.groups()[1:] if n]
    return ".save " + " ".join(dict.fromkeys(names)) if names else None


def _has_card(pattern: re.Pattern[str], text: str) -> bool:
    """Whether ``pattern`` (a card: it starts with a newline) is on a line of ``text``. Searched in ``"\\n" + text``:
    sre skips from newline to newline at memory speed, where a ``^`` under re.M is tried at every position (~30 ms
    per search of a sky130 library's 2.9 M characters, a dozen of them per deck read)."""
    return pattern.search("\n" + text) is not None


def _mentions(text: str, word: str) -> bool:
    """Whether ``text`` holds ``word`` (lower-case ASCII) in any case. An ASCII text lower-cased and searched plainly:
    re.IGNORECASE finds a word a character at a time (70 ms in a sky130 library); any other with it, as it matches
    more than lower() maps ('\u017f' is an 's' to it)."""
    return word in text.lower() if text.isascii() else re.search(word, text, re.I) is not None


def limits_saves(texts: Sequence[str]) -> bool:
    """Whether one of ``texts`` (the deck, its included files) limits what a run saves (:data:`_SAVE_LIMIT`)."""
    return any(_has_card(_SAVE_LIMIT, t) or _mentions(t, "savecurrents") for t in texts)


def unsaved_analysis(lines: Sequence[Line], limited: bool = False) -> tuple[int, str] | None:
    """``(line, why)`` for the first ``.pz``/``.disto`` card (``.tf`` beside ``.op``) that ``ngspice -b``'s run of
    the dot-analyses saves nothing for; None when there is none, or it does not run them, or saving is limited
    (``limited``: by an included file, :func:`limits_saves` of their texts, which the deck's reading asks once)."""
    cards, uncertain = _dot_cards(lines)
    words = {word for word, _, _ in cards}
    if uncertain or limited or limits_saves([w + " " + r for w, r, _ in cards]) \
            or not words & set(_OUTPUT_WORDS):
        return None
    found = next(((w, line) for w, _, line in cards
                  if w in (".pz", ".disto") or w == ".tf" and ".op" in words), None)
    if found is None:
        return None
    word, line = found
    return line, (f"ngspice -b runs the dot-analyses (after a .control block too) saving only the vectors that .save, "
                  f".print and .meas cards name, none of this {word} card's: run by hand (best.cir), the deck "
                  f"{_UNSAVED_ENDS[word]} after its results; zoaf reports the results. Add `.save all` to the deck")


def unread_four(lines: Sequence[Line]) -> tuple[int, str] | None:
    """``(line, why)`` for the first ``.four`` card whose fundamental is not a number (an ``{expression}``, a
    parameter's name), for which ngspice prints no table; None when there is none."""
    for word, rest, line in _dot_cards(lines)[0]:
        if word not in (".four", ".fourier") or not rest.split():
            continue
        fundamental = rest.split()[0]
        try:
            parse(fundamental)
        except InputError:
            return line, (f"{word} {fundamental}: ngspice reads a {word} card's fundamental as a plain number (it "
                          "substitutes no expression there): run by hand (best.cir), the deck prints 'bad "
                          "fundamental freq' and no Fourier table, and its measures as usual. Write the number")
    return None


def unread_tf(lines: Sequence[Line]) -> tuple[int, str] | None:
    """``(line, why)`` for a ``.tf`` card of a deck without a ``.control`` block: ``ngspice -b`` prints its table
    (``transfer_function = ...``), which is no measure (ngspice has no ``.meas tf``), so zoaf reads none of it and a
    spec could only be told the deck has no such measure; None otherwise."""
    if _has_control(lines):
        return None
    for word, rest, line in _dot_cards(lines)[0]:
        if word == ".tf":
            return line, (f".tf {rest}: ngspice -b prints its table (transfer_function, the input and output "
                          "impedances), which is no measure zoaf reads. To size on them, run it in a .control block: "
                          "`run`, `let gain = transfer_function`, `print gain`")
    return None


def param_in_conditional(lines: Sequence[Line]) -> tuple[int, str] | None:
    """``(line, why)`` for the first ``.param`` card inside an ``.if`` block: ngspice 39 reads every ``.param`` line
    whichever branch is taken (``.if (c == 2)`` / ``.param r=3k`` / ``.endif`` sets r=3k at c=1, by hand as in
    zoaf), which the block's text says otherwise; None when there is none."""
    depth = 0
    for ln in lines:
        word = ln.text.split(None, 1)[0] if ln.text.split() else ""
        depth += (word == ".if") - (word == ".endif")
        if depth > 0 and word in (".param", ".params"):
            return ln.lineno, (f"{ln.raw.strip()[:80]}: a .param inside an .if block is read whichever branch is "
                               "taken (ngspice 39; the last definition wins, by hand as in zoaf): set it outside the "
                               "block, from a ternary (e.g. `.param r={c == 2 ? 3k : 1k}`)")
    return None


#: A numparam random function (``agauss(nom, var, sigma)``, ``gauss``, ``aunif``, ``unif``), drawn at every parse.
_DRAW = re.compile(r"(?<![\w.])(agauss|gauss|aunif|unif)\s*\(")
#: An ``.options`` card that seeds those draws.
_SEED_OPTION = re.compile(r"\n[^\S\n]*\.opt\w*\s(?:.*\s)?seed\s*=")


def unseeded_draw(lines: Sequence[Line], included: Sequence[str] = ()) -> tuple[int, str] | None:
    """``(line, why)`` for the deck's first card with a random draw (``.param dr=agauss(0, 0.1, 1)``) where no
    ``.options seed=`` (the deck's or an included file's) fixes it: ngspice draws again at every parse, each
    ``ngspice -b`` run and each of zoaf's sizings alike, so the measures carry noise that no optimizer can follow and
    ``best.cir`` measures otherwise by hand; with a seed, every sizing draws what ``ngspice -b`` draws (and so does
    every Monte Carlo sample: the deck's seed outweighs the ``setseed`` of :meth:`zoaf.spice.SpiceSession.evaluate`)."""
    if any(_has_card(_SEED_OPTION, t) for t in chain((ln.text for ln in lines), map(str.lower, included))):
        return None
    in_control = False
    for ln in lines:
        word = ln.text.split(None, 1)[0] if ln.text.split() else ""
        in_control = (in_control or word.startswith(".control")) and not word.startswith(".endc")
        if not in_control and (m := _DRAW.search(ln.text)):
            return ln.lineno, (f"{m.group(1)}() draws a new value at every parse, with no .options seed: every "
                               "ngspice -b run and every sizing of zoaf draws another, so the measures are random "
                               "(by hand too); `.options seed=1` (any number) draws the same at every sizing (but "
                               "also at every sample of `zoaf yield`, which seeds a deck without it per sample)")
    return None


#: Why a ``trnoise`` source of white or 1/f noise is noted (:func:`unseeded_noise`).
_NOISE_WHY = ("a trnoise source of white or 1/f noise: ngspice 39 draws it from a generator that no seed fixes "
              "(.options seed, set rndseed, setseed alike), so every ngspice -b run and every sizing of zoaf measures "
              "other values (by hand too) and an optimizer follows noise; for a repeatable bench use .noise, a random "
              "telegraph trnoise(0 0 0 0 rtsam ...) under .options seed, or a pwl source of fixed values")


def unseeded_noise(lines: Sequence[Line], included: Sequence[str] = ()) -> tuple[int, str] | None:
    """``(line, why)`` for the deck's first source with ``trnoise`` white or 1/f noise (an included file's: at the
    deck's first include line, naming the source). ngspice -b measures such a deck anew at every run, so zoaf runs
    it as it is and says so (a refusal kept a working bench from running at all)."""
    for ln in lines:
        if noisy_source(ln.text):
            return ln.lineno, _NOISE_WHY
    for text in (t for t in included if "trnoise" in t.lower()):      # a file without the word is not read
        source = next((ln.raw.strip() for ln in logical_lines([""] + physical_lines(text))[1:]
                       if noisy_source(ln.text)), None)
        if source is not None:
            first = next((ln.lineno for ln in lines if ln.text.startswith((".inc", ".lib"))), 1)
            return first, f"an included file's {source[:60]!r}: {_NOISE_WHY}"
    return None


def _has_control(lines: Sequence[Line]) -> bool:
    """Whether the deck has a ``.control`` block, whose commands may read or run what its dot-cards do not."""
    return any(ln.text.split()[:1] and ln.text.split()[0].startswith(".control") for ln in lines)


def unrun_analyses(lines: Sequence[Line], included: Sequence[str] = ()) -> tuple[int, str] | None:
    """``(line, why)`` for the first ``.meas`` card of a deck whose dot-analyses ``ngspice -b`` does not run (no
    card asks for output it can save: every ``.meas`` card reads ``@device[param]`` vectors only); None when it
    does, or it is not certain (a ``.control`` block, an included file with output cards)."""
    if _has_control(lines) or any(_has_card(_OUTPUT_CARD, t) for t in included):
        return None
    cards, _ = _dot_cards(lines)
    meas = [(rest, line) for word, rest, line in cards      # a param= card reads no vector
            if word in (".meas", ".measure") and not _PARAM_CARD.search(rest)]
    if not meas or any(w in _OUTPUT_WORDS and w not in (".meas", ".measure") for w, _, _ in cards) \
            or any(_EXTRACTED.search(rest) or "@" not in rest for rest, _ in meas):
        return None
    return meas[0][1], ("ngspice -b runs the dot-analyses only when a .print, .plot, .four, .op or .tf card, or a "
                        ".meas card of a v(...) or i(...) vector, asks for output; these .meas cards read only "
                        "@device[param] vectors: run by hand (best.cir), the deck prints 'no simulations run' and "
                        "exits with status 1; zoaf measures. Add a .meas card of a node voltage (or a .print card)")


_M = re.compile(r"(?<![\w.])m\s*=")


def _instance_of(text: str) -> str:
    """The subcircuit an ``x`` line instantiates: its last word before the first ``name=value``."""
    words = re.sub(r"\s*=\s*", "=", text).split()
    return next((words[k - 1] for k, w in enumerate(words) if "=" in w or w == "params:"), words[-1])


def nested_multiplier(lines: Sequence[Line]) -> tuple[int, str] | None:
    """``(line, why)`` for the first element with ``m=`` inside a subcircuit that an instance with ``m=`` places (at
    any depth): with ``ngbehavior=hsa`` (zoaf's, and best.cir's ``.spiceinit``) both multiply, while plain
    ``ngspice -b`` keeps the outer ``m`` alone (legs ``m=2`` of cells ``m=3``: 2 cells, not 6); None when none."""
    owned: list[tuple[str | None, Line]] = []          # (the subcircuit whose body holds it, or None; the line)
    owner: str | None = None
    for ln in lines:
        words = ln.text.split()
        if words[:1] == [".subckt"] and len(words) > 1:
            owner = words[1]
        elif words[:1] == [".ends"]:
            owner = None
        elif words and words[0][0].isalpha():
            owned.append((owner, ln))
    under: set[str] = set()                             # the subcircuits an outer m= multiplies
    while True:
        more = {_instance_of(ln.text) for o, ln in owned
                if ln.text.startswith("x") and (_M.search(ln.text) or o in under)} - under
        if not more:
            break
        under |= more
    inner = next((ln for o, ln in owned if o in under and _M.search(ln.text)), None)
    return None if inner is None else (inner.lineno, (
        f"{inner.raw.strip()[:80]}: an m= inside a subcircuit placed by an instance with m=: zoaf multiplies both "
        "(ngbehavior=hsa, as the .spiceinit beside best.cir sets it), plain `ngspice -b` without that .spiceinit "
        "keeps the outer m alone (legs m=2 of cells m=3: 2 cells, not 6)"))


def batch_notes(lines: Sequence[Line], included: Sequence[str] = (), limited: bool = False) -> list[tuple[int, str]]:
    """``(line, why)`` for each way a run of the deck by hand (``ngspice -b best.cir``) prints less than zoaf
    reports, or a table zoaf cannot read (:func:`unread_tf`): the notes of :class:`zoaf.netlist.Netlist` (``lines``:
    the deck's logical lines after the title; ``limited``: :func:`limits_saves` of ``included``)."""
    found = (unsaved_node(lines, included, limited), unsaved_analysis(lines, limited), unread_four(lines),
             unread_tf(lines), unrun_analyses(lines, included), param_in_conditional(lines),
             nested_multiplier(lines), unseeded_draw(lines, included), unseeded_noise(lines, included))
    return [f for f in found if f is not None]
