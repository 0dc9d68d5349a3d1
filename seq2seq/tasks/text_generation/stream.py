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

from seq2seq.data.tokenizer import BOS_ID, EOS_ID, PAD_ID
from seq2seq.inference import Translator
from seq2seq.search.hypothesis import forbid_specials
from seq2seq.search.sampling import filter_logits


@torch.no_grad()
def window_tokens(
    translator: Translator, source: str, limit: int, generator: torch.Generator
) -> Iterator[int]:
    """Output ids for one window, as they are chosen (EOS ends the window, not yielded)."""
    cfg = translator.search
    ids = translator.encode_source([source], truncate=True)[0]
    if not cfg.sampling and cfg.beam_size > 1:
        with translator.using(max_len_a=0.0, max_len_b=limit):
            hyps = translator.hypotheses([source], truncate=True)[0]
        yield from (hyps[0].tokens if hyps else [])
        return
    model, device = translator.model, translator.device
    src = torch.tensor([[*ids, EOS_ID]], dtype=torch.long, device=device)
    state = model.init_state(model.encode(src, torch.tensor([src.size(1)])))  # type: ignore[arg-type]
    token = torch.tensor([BOS_ID], device=device)
    for t in range(limit):
        log_probs, state, _ = model.step(token, state)  # type: ignore[arg-type]
        log_probs = log_probs.float()
        forbid_specials(log_probs, PAD_ID, BOS_ID)
        if t < cfg.min_len:
            log_probs[:, EOS_ID] = float("-inf")
        if cfg.sampling:
            logits = filter_logits(log_probs, cfg.temperature, cfg.top_k, cfg.top_p)
            token = torch.multinomial(logits.softmax(-1).cpu(), 1, generator=generator)[0]
        else:
            token = log_probs.argmax(-1).cpu()
        if int(token) == EOS_ID:
            return
        yield int(token)
        token = token.to(device)


def stream(translator: Translator, prompt: str, max_tokens: int) -> Iterator[str]:
    """Text continuing ``prompt`` (without it), in pieces as they are produced, until
    ``max_tokens`` tokens or a window that yields nothing."""
    cfg = translator.search
    context = translator.recipe.data.windows.context
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
