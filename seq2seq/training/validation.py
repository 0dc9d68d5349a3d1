"""Scores of the validation split during training: teacher-forced loss, and the BLEU
of a (greedy by default) search."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from seq2seq.config import Search
from seq2seq.data.batching import make_batch, token_batches
from seq2seq.data.dataset import Examples
from seq2seq.data.tokenizer import Tokenizer
from seq2seq.evaluate import score
from seq2seq.inference import decode_ids
from seq2seq.model.encoder_decoder import EncoderDecoder

BatchLoss = Callable[[torch.nn.Module, Any, float, float], tuple[torch.Tensor, torch.Tensor]]


@torch.no_grad()
def valid_loss(
    model: EncoderDecoder,
    valid: Examples,
    batch_tokens: int,
    device: torch.device,
    batch_loss: BatchLoss,
) -> float:
    """Teacher-forced NLL per target token (EOS included), no label smoothing, in fixed
    length-sorted batches of ``batch_tokens``; ``batch_loss(model, batch, 1.0, 0.0)``
    gives a batch's (loss, nll) sums."""
    assert valid.tgt is not None
    nll_sum, tokens = 0.0, 0
    for indices in token_batches(
        valid.src.lengths + 1,
        valid.tgt.lengths + 1,
        batch_tokens,
        seed=0,
        epoch=0,
        shuffle=False,
    ):
        batch = make_batch(valid.src, valid.tgt, indices).to(device)
        _, nll = batch_loss(model, batch, 1.0, 0.0)
        nll_sum, tokens = nll_sum + float(nll), tokens + batch.num_tgt_tokens
    return nll_sum / max(tokens, 1)


@torch.no_grad()
def valid_bleu(
    model: EncoderDecoder, valid: Examples, search: Search, tgt_tok: Tokenizer, device: torch.device
) -> float:
    """sacreBLEU of ``search``'s best output for each validation source."""
    assert valid.corpus.tgt is not None
    hyps = decode_ids(model, valid.src, search, device)
    outputs = tgt_tok.decode([h[0].tokens for h in hyps])
    return score(outputs, list(valid.corpus.tgt)).bleu
