"""Open-ended generation with a text_generation run: a continuation streamed as it is made.

The model was trained on windows (up to ``data.windows.context`` characters -> the next
``max_len_b`` tokens), so a long continuation is made window by window: generate a span,
append it to the text, read the last ``context`` characters as the next source, go on.
Within a window, greedy and sampling decoding emit token by token through the decoder
contract (one sequence, no batch); beam search emits a window at a time, since its best
output is only known at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from seq2seq.config import ConfigError, Data
from seq2seq.data.tokenizer import BOS_ID, EOS_ID
from seq2seq.inference import Translator
from seq2seq.search.contract import Decodable
from seq2seq.search.hypothesis import OutputBuffer
from seq2seq.search.sampling import DrawRules, sample_steps
from seq2seq.search.shortlist import Shortlisted
from seq2seq.tasks.text_generation.windows import WindowOptions


@torch.no_grad()
def window_tokens(
    translator: Translator, source: str, limit: int, generator: torch.Generator
) -> Iterator[int]:
    """Output ids for one window, as they are chosen (EOS ends the window, not yielded).

    Greedy and sampling run the search's own sampling loop (greedy as top-k 1, which
    equals greedy search), so every token rule applies as in ``translate``: specials,
    min_len, no_repeat_ngram, the grammar, the length limit. A beam's best output is only
    known at its end: beam search yields the window at once."""
    cfg = translator.search
    if not cfg.sampling and cfg.beam_size > 1:
        with translator.using(max_len_a=0.0, max_len_b=limit):
            hyps = translator.hypotheses([source], truncate=True)[0]
        yield from (hyps[0].tokens if hyps else [])
        return
    ids = translator.encode_source([source], truncate=True)[0]
    device = translator.device
    src = torch.tensor([[*ids, EOS_ID]], dtype=torch.long, device=device)
    lengths = torch.tensor([src.size(1)])
    rules = DrawRules(
        temperature=cfg.temperature if cfg.sampling else 1.0,
        top_k=cfg.top_k if cfg.sampling else 1,
        top_p=cfg.top_p if cfg.sampling else 1.0,
        min_len=cfg.min_len,
        no_repeat_ngram=cfg.no_repeat_ngram,
    )
    out = OutputBuffer(1, limit + 1, src.size(1), EOS_ID, device, attention=False)
    model: Decodable = translator.model
    shortlist = translator.shortlist
    if shortlist is not None:
        if cfg.constrained:
            raise ConfigError("search.shortlist cannot be combined with search.constrained")
        model = Shortlisted(model, shortlist.candidates(src).to(device))
    steps = sample_steps(
        model,
        src,
        lengths,
        torch.tensor([limit]),
        (BOS_ID, EOS_ID),
        rules,
        out,
        generator,
        constraint=translator.constraint,
    )
    for _, tokens in steps:
        token = int(tokens[0])
        if isinstance(model, Shortlisted):
            token = int(model.ids[token])  # a position among the candidates
        if token == EOS_ID:
            return
        yield token


def context_chars(data: Data) -> int:
    """How much preceding text the model reads: the windows' context it was trained on
    (format windows), else ``data.max_len`` (an upper bound in tokens: each token is at
    least one character)."""
    options = data.options
    return options.context if isinstance(options, WindowOptions) else data.max_len


def stream(translator: Translator, prompt: str, max_tokens: int) -> Iterator[str]:
    """Text continuing ``prompt`` (without it), in pieces as they are produced, until
    ``max_tokens`` tokens or a window that yields nothing."""
    cfg = translator.search
    context = context_chars(translator.recipe.data)
    span = max(int(cfg.max_len_b), 1)
    generator = torch.Generator()
    if cfg.seed is not None:
        generator.manual_seed(cfg.seed)
    else:
        generator.seed()
    text, produced = prompt, 0
    while produced < max_tokens:
        ids: list[int] = []
        shown = decoded = ""
        for token in window_tokens(
            translator, text[-context:], min(span, max_tokens - produced), generator
        ):
            ids.append(token)
            decoded = translator.tgt_tok.decode([ids])[0]
            if len(decoded) > len(shown) and decoded.startswith(shown):
                yield decoded[len(shown) :]
                shown = decoded
        if not ids:
            return
        if len(decoded) > len(shown):  # a piece that rewrote earlier text: the rest now
            yield decoded[len(shown) :]
        produced += len(ids)
        text += decoded
