"""Harmonising whole chorales with a model trained bar by bar (``data.chorales.unit:
bar``): each bar's source holds the previous bar as the model itself harmonised it (the
reference's would not be there for a new melody). The bars are searched in rounds by
their place, all first bars in one batched search, then all second bars, and so on, so
C chorales of at most K bars cost K searches, not C x K (``query_expansion/dialog.py``
rewrites dialogs the same way)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from seq2seq.tasks.music.chorales import MusicError, bar_source, longest_bar_output, parse_source

if TYPE_CHECKING:
    from seq2seq.inference import Translator


def harmonize_by_bars(translator: Translator, sources: Sequence[str]) -> list[str]:
    """Whole sources (``M:4/4 K:0 <soprano bars>``) -> whole targets, one bar at a time:
    the outputs of a chorale's bars joined in order. A source that does not parse gets
    "" (the validity check then says it is malformed)."""
    pieces = []
    for source in sources:
        try:
            pieces.append(parse_source(source))
        except (MusicError, ValueError):
            pieces.append(("4/4", None, []))
    bars: list[list[str]] = [[] for _ in sources]
    for bar in range(max((len(soprano) for _, _, soprano in pieces), default=0)):
        rows = [i for i, (_, _, soprano) in enumerate(pieces) if bar < len(soprano)]
        bar_sources = [bar_source(*pieces[i], bar, bars[i][-1] if bar else None) for i in rows]
        # no valid bar is longer than this: a search that loops stops there (its output
        # is invalid either way) rather than at a limit scaled by the whole source,
        # which would feed the next bar a source several times as long, and so on
        longest = max(sum(n.duration for n in pieces[i][2][bar]) for i in rows)
        search = translator.with_search(max_len_a=0.0, max_len_b=longest_bar_output(longest))
        for i, output in zip(rows, search.translate(bar_sources), strict=True):
            bars[i].append(output)
    return [" ".join(outputs) for outputs in bars]
