"""Several trained models searched as one: the decoder contract over a list of models.

Every model reads the same source ids and predicts over the same target vocabulary;
``step`` returns the mean of their log-probabilities (the geometric mean of their
distributions, as OpenNMT-py does; fairseq averages probabilities instead) and the mean of
their attention, so greedy, beam and sampling search an ensemble without knowing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from seq2seq.model.decoder_state import DecoderState
from seq2seq.model.encoder_decoder import EncoderDecoder, EncoderOutput
from seq2seq.model.output_rows import OutputRows


@dataclass
class EnsembleEncoded:
    """One ``EncoderOutput`` per model; ``mask`` (B, S) is common to all (same source ids)."""

    parts: list[EncoderOutput]

    @property
    def mask(self) -> torch.Tensor:
        return self.parts[0].mask


@dataclass
class EnsembleState:
    """One ``DecoderState`` per model, all with the same hypothesis rows."""

    parts: list[DecoderState]

    def select(
        self,
        index: torch.Tensor,
        same_sources: bool = False,
        sources: torch.Tensor | None = None,
    ) -> EnsembleState:
        return EnsembleState([part.select(index, same_sources, sources) for part in self.parts])

    def join(self, other: EnsembleState) -> EnsembleState:
        """This state's rows, then ``other``'s, in every model (``DecoderState.join``)."""
        pairs = zip(self.parts, other.parts, strict=True)
        return EnsembleState([mine.join(theirs) for mine, theirs in pairs])


class Ensemble(nn.Module):
    def __init__(self, models: Sequence[EncoderDecoder]) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        self.models = nn.ModuleList(models)  # registers the parameters
        self.members = list(models)  # the same modules, typed for the contract calls

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor
    ) -> torch.Tensor:
        """Teacher forcing, for scoring: tgt_in (B, T) -> the mean of the members'
        float32 log-probabilities (B, T, V), as ``step`` gives them (a log_softmax of it
        is the normalised geometric mean)."""
        log_probs = [
            model(src, src_lengths, tgt_in).float().log_softmax(-1) for model in self.members
        ]
        return torch.stack(log_probs).mean(0)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EnsembleEncoded:
        """src (B, S) ids, src_lengths (B,) on CPU."""
        return EnsembleEncoded([model.encode(src, src_lengths) for model in self.members])

    def init_state(self, encoded: EnsembleEncoded) -> EnsembleState:
        parts = zip(self.members, encoded.parts, strict=True)
        return EnsembleState([model.init_state(part) for model, part in parts])

    def step(
        self,
        tokens: torch.Tensor,
        state: EnsembleState,
        rows: list[OutputRows] | None = None,
        penalty: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, EnsembleState, torch.Tensor]:
        """tokens (B,) -> mean log-probs (B, V), next state, mean attention (B, S); with
        ``rows`` (``output_rows``) over their V' ids only, each model's normalised with
        ``penalty`` (B, V') added (``Decoder.step``)."""
        log_probs, parts, attention = [], [], []
        per_model: list[OutputRows | None] = list(rows) if rows else [None] * len(self.members)
        for model, part, own in zip(self.members, state.parts, per_model, strict=True):
            lp, next_part, attn = model.step(tokens, part, own, penalty)
            log_probs.append(lp)
            parts.append(next_part)
            attention.append(attn.float())
        mean_lp = torch.stack(log_probs).mean(0)
        return mean_lp, EnsembleState(parts), torch.stack(attention).mean(0)

    def output_rows(self, ids: torch.Tensor) -> list[OutputRows]:
        """Each model's output layer for target ids ``ids`` (V',) only, for ``step``."""
        return [model.output_rows(ids) for model in self.members]

    def reorder(
        self,
        state: EnsembleState,
        index: torch.Tensor,
        same_sources: bool = False,
        sources: torch.Tensor | None = None,
    ) -> EnsembleState:
        """Select (or repeat) hypotheses of every model, as ``EncoderDecoder.reorder``."""
        return state.select(index, same_sources, sources)

    def join(self, state: EnsembleState, other: EnsembleState) -> EnsembleState:
        """The rows of ``state``, then those of ``other`` (see ``EncoderDecoder.join``)."""
        return state.join(other)
