"""Inputs for tracing and checking the exported graphs: a random source batch and a
decoder step's inputs built from the model's own encoder, and the PyTorch model's own
search step on them (the reference an export must match)."""

from __future__ import annotations

import torch

from seq2seq.data.tokenizer import EOS_ID, PAD_ID
from seq2seq.export.graphs import int8_layer_inputs, quantize_rows, step_input_names
from seq2seq.model.encoder_decoder import EncoderDecoder


def sample_source(
    model: EncoderDecoder, batch: int, length: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random padded source batch (B, S) ending in EOS, lengths falling from S."""
    generator = torch.Generator().manual_seed(seed)
    vocab = model.encoder.embedding.num_embeddings
    src = torch.randint(EOS_ID + 1, max(vocab, EOS_ID + 2), (batch, length), generator=generator)
    lengths = torch.tensor([max(length - 2 * i, 1) for i in range(batch)], dtype=torch.long)
    for row, n in enumerate(lengths.tolist()):
        src[row, n - 1] = EOS_ID
        src[row, n:] = PAD_ID
    return src, lengths


def step_inputs(
    model: EncoderDecoder, src: torch.Tensor, lengths: torch.Tensor, group: int
) -> dict[str, torch.Tensor]:
    """The step graph's inputs for ``group`` hypotheses per source, from the model's own
    encoder, with a random hypothesis state (so no input is all zeros) and a penalty
    that rules out a quarter of each row's tokens (as a shortlist's)."""
    state = model.init_state(model.encode(src, lengths))
    generator = torch.Generator().manual_seed(2)
    rows = src.size(0) * group
    vocab = model.decoder.project.out_features

    def random(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.5

    inputs = {
        "tokens": torch.randint(EOS_ID + 1, max(vocab, EOS_ID + 2), (rows,), generator=generator),
        "hidden": random(*state.hidden.shape[:1], rows, state.hidden.size(2)),
        "cell": random(*state.cell.shape[:1], rows, state.cell.size(2)),
        "feed": random(rows, model.decoder.output_dim),
        "memory": state.memory,
        "keys": state.keys,
        "mask": state.mask,
        "copy_index": src,
        "out_weight": model.decoder.project.weight.detach(),
        "out_bias": model.decoder.project.bias.detach(),
        "penalty": _penalty(rows, vocab, generator),
    }
    names = step_input_names(model.decoder)
    return {name: inputs[name] for name in names}


def _penalty(rows: int, vocab: int, generator: torch.Generator) -> torch.Tensor:
    """(rows, vocab): -inf on a random quarter of each row's tokens (never EOS), else 0."""
    ruled_out = torch.rand(rows, vocab, generator=generator) < 0.25
    ruled_out[:, EOS_ID] = False
    return torch.zeros(rows, vocab).masked_fill_(ruled_out, float("-inf"))


def int8_output_inputs(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``inputs`` of the step graph for its int8 twin: the output layer's weight (V', O)
    as int8 columns (O, V') with a scale each (V',) (graphs.quantize_rows)."""
    weight, scale = quantize_rows(inputs["out_weight"])
    layer = ("out_weight", "out_bias", "penalty")
    rest = {name: t for name, t in inputs.items() if name not in layer}
    int8_layer = int8_layer_inputs(weight, scale, inputs["out_bias"])
    return {**rest, **int8_layer, "penalty": inputs["penalty"]}


def model_step(
    model: EncoderDecoder,
    src: torch.Tensor,
    lengths: torch.Tensor,
    inputs: dict[str, torch.Tensor],
) -> torch.Tensor:
    """The PyTorch model's own step (the search's path) on the same inputs: log-probs."""
    penalty = inputs["penalty"]
    state = model.init_state(model.encode(src, lengths))
    rows = inputs["tokens"].size(0)
    group = rows // src.size(0)
    sources = torch.arange(src.size(0))
    state = model.reorder(state, sources.repeat_interleave(group), sources=sources)
    state.hidden, state.cell = inputs["hidden"], inputs["cell"]
    if "feed" in inputs:
        state.feed = inputs["feed"]
    return model.step(inputs["tokens"], state, None, None if penalty.numel() == 1 else penalty)[0]
