"""The best continuations of a beam: a top-k over K x V candidates without building them.

Beam search ranks every (beam, token) pair of a sentence by score + log-prob: (n, K*V)
values, 40,000 per sentence at beam 5 over 8,000 pieces. Adding the scores in and
running ``topk`` over that is a large part of a decoding step on CPU. ``top_candidates``
gets the same answer from a fraction of the values: the vocabulary is cut into chunks of
C tokens; only a chunk whose maximum is among the ``count`` largest chunk maxima of its
sentence can hold one of the ``count`` best candidates (every chunk that holds one has a
maximum at least as large as the count-th best value, and at most ``count`` chunks do,
ties aside), so the top-k runs over ``count`` chunks per sentence.
"""

from __future__ import annotations

from functools import lru_cache

import torch

# chunk widths tried, best first: wide enough that the chunk maxima are few, narrow
# enough that the gathered chunks are cheap
_CHUNK_WIDTHS = (64, 80, 50, 100, 40, 128, 125, 32)


@lru_cache(maxsize=16)
def chunk_width(vocab: int) -> int | None:
    """A chunk width that divides ``vocab`` and leaves at least 8 chunks, or None."""
    for width in _CHUNK_WIDTHS:
        if vocab % width == 0 and vocab // width >= 8:
            return width
    return None


def top_candidates(
    log_probs: torch.Tensor, scores: torch.Tensor, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` best of scores[b, j] + log_probs[b*K + j, v] per sentence b.

    log_probs (n*K, V); scores (n, K) -> values (n, count), best first, and their
    indices (n, count) into the flattened (K*V) candidates of the sentence, as
    ``(scores.unsqueeze(-1) + log_probs.view(n, K, V)).view(n, -1).topk(count)`` gives
    (the order of equal values may differ).
    """
    n, k = scores.shape
    vocab = log_probs.size(-1)
    width = chunk_width(vocab)
    if width is None or count * width >= k * vocab:
        candidates = scores.unsqueeze(-1) + log_probs.view(n, k, vocab)
        return candidates.view(n, k * vocab).topk(count, dim=1)
    chunks = vocab // width
    maxima = log_probs.view(n, k, chunks, width).amax(-1) + scores.unsqueeze(-1)  # (n, K, C)
    _, best_chunks = maxima.view(n, k * chunks).topk(count, dim=1)  # (n, count) in K*C
    first = torch.arange(n, device=scores.device).unsqueeze(1) * (k * chunks)
    values = log_probs.reshape(-1, width).index_select(0, (first + best_chunks).view(-1))
    beam = torch.div(best_chunks, chunks, rounding_mode="floor")  # (n, count)
    values = values.view(n, count, width) + scores.gather(1, beam).unsqueeze(-1)
    top_values, position = values.view(n, count * width).topk(count, dim=1)
    chunk = best_chunks.gather(1, torch.div(position, width, rounding_mode="floor"))
    return top_values, chunk * width + position % width
