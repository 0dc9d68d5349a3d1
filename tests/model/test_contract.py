"""The decoder contract: stepping reproduces the teacher-forced forward, on both decoder
paths and every attention; padding changes nothing."""

import pytest
import torch
from helpers import random_batch, tiny_model

from seq2seq.data.tokenizer import BOS_ID
from seq2seq.kernels import step_lstm
from seq2seq.model.encoder import Bridge

VOCAB = 23
VARIANTS = [(a, f) for a in ["general", "dot", "bahdanau"] for f in [False, True]]


def decoder_input(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    tgt = torch.randint(4, VOCAB, (batch, length), generator=gen)
    tgt[:, 0] = BOS_ID
    return tgt


def step_through(model, src, lengths, tgt_in) -> torch.Tensor:
    state = model.init_state(model.encode(src, lengths))
    steps = []
    for t in range(tgt_in.size(1)):
        log_probs, state, attn = model.step(tgt_in[:, t], state)
        assert torch.allclose(attn.sum(-1), torch.ones(src.size(0)), atol=1e-5)
        steps.append(log_probs)
    return torch.stack(steps, 1)


@pytest.mark.parametrize("attention,input_feeding", VARIANTS)
def test_stepping_equals_teacher_forced_forward(attention: str, input_feeding: bool):
    model = tiny_model(VOCAB, attention=attention, input_feeding=input_feeding)
    src, lengths = random_batch(5, VOCAB)
    tgt_in = decoder_input(5, 7)
    with torch.no_grad():
        forward = torch.log_softmax(model(src, lengths, tgt_in), -1)
        stepped = step_through(model, src, lengths, tgt_in)
    assert torch.allclose(forward, stepped, atol=1e-5)


@pytest.mark.parametrize("attention,input_feeding", VARIANTS)
def test_padding_changes_nothing(attention: str, input_feeding: bool):
    model = tiny_model(VOCAB, attention=attention, input_feeding=input_feeding)
    src, lengths = random_batch(6, VOCAB, seed=3)
    tgt_in = decoder_input(6, 5)
    with torch.no_grad():
        batched = model(src, lengths, tgt_in)
        for row in range(6):
            n = int(lengths[row])
            alone = model(src[row : row + 1, :n], lengths[row : row + 1], tgt_in[row : row + 1])
            assert torch.allclose(batched[row], alone[0], atol=1e-5)


def test_attention_ignores_padding():
    model = tiny_model(VOCAB)
    src, lengths = random_batch(4, VOCAB, seed=5)
    with torch.no_grad():
        state = model.init_state(model.encode(src, lengths))
        _, _, attn = model.step(torch.full((4,), BOS_ID), state)
    for row, n in enumerate(lengths.tolist()):
        assert float(attn[row, n:].abs().sum()) == 0.0


def test_reorder_selects_and_repeats_rows():
    model = tiny_model(VOCAB, input_feeding=True)
    src, lengths = random_batch(3, VOCAB)
    state = model.init_state(model.encode(src, lengths))
    index = torch.tensor([2, 2, 0])
    picked = model.reorder(state, index)
    assert torch.equal(picked.hidden, state.hidden[:, index])
    assert torch.equal(picked.memory, state.memory[index])
    assert (
        picked.feed is not None
        and state.feed is not None
        and torch.equal(picked.feed, state.feed[index])
    )


def test_tied_and_shared_embeddings_are_one_tensor():
    model = tiny_model(VOCAB, share_embeddings=True, tie_embeddings=True)
    assert model.encoder.embedding is model.decoder.embedding
    assert model.decoder.project.weight is model.decoder.embedding.weight
    untied = tiny_model(VOCAB, tie_embeddings=False)
    assert untied.decoder.project.weight is not untied.decoder.embedding.weight


@pytest.mark.parametrize("bridge", ["linear", "copy", "zero"])
def test_bridge_shapes(bridge: str):
    model = tiny_model(VOCAB, bridge=bridge)
    src, lengths = random_batch(3, VOCAB)
    state = model.init_state(model.encode(src, lengths))
    assert state.hidden.shape == (2, 3, 24) and state.cell.shape == (2, 3, 24)
    if bridge == "zero":
        assert float(state.hidden.abs().sum()) == 0.0
    if bridge == "copy":  # the encoder's final states, directions joined, unchanged
        final_h, final_c = model.encoder(src, lengths)[1]
        assert torch.equal(state.hidden, final_h) and torch.equal(state.cell, final_c)


def test_copy_bridge_needs_matching_sizes():
    with pytest.raises(ValueError, match="bridge 'copy' needs the encoder's output size"):
        Bridge("copy", enc_dim=24, dec_dim=32, enc_layers=2, dec_layers=2)


def test_scheduled_sampling_with_input_feeding_feeds_own_argmax():
    """teacher_forcing=0 must equal stepping on the model's own greedy outputs."""
    model = tiny_model(VOCAB, input_feeding=True)
    src, lengths = random_batch(4, VOCAB)
    tgt_in = decoder_input(4, 6)
    with torch.no_grad():
        sampled = model(src, lengths, tgt_in, teacher_forcing=0.0)
        state = model.init_state(model.encode(src, lengths))
        tokens, steps = tgt_in[:, 0], []
        for _ in range(6):
            log_probs, state, _ = model.step(tokens, state)
            steps.append(log_probs)
            tokens = log_probs.argmax(-1)
    assert torch.allclose(torch.log_softmax(sampled, -1), torch.stack(steps, 1), atol=1e-5)


def test_scheduled_sampling_fast_path_uses_teacher_forced_predictions():
    model = tiny_model(VOCAB)
    src, lengths = random_batch(4, VOCAB)
    tgt_in = decoder_input(4, 6)
    with torch.no_grad():
        sampled = model(src, lengths, tgt_in, teacher_forcing=0.0)
        guesses = model(src, lengths, tgt_in).argmax(-1)
        mixed = torch.cat([tgt_in[:, :1], guesses[:, :-1]], dim=1)
        expected = model(src, lengths, mixed)
        forced = model(src, lengths, tgt_in, teacher_forcing=1.0)
    assert torch.allclose(sampled, expected, atol=1e-6)
    assert not torch.allclose(sampled, forced)


@pytest.mark.parametrize("input_feeding", [False, True])
@pytest.mark.parametrize("table", [True, False])
def test_search_lstm_step_equals_nn_lstm(input_feeding: bool, table: bool, monkeypatch):
    """The search step's LSTM (gate table, concatenated weights) computes what nn.LSTM
    does, and notices weights changed in place."""
    if not table:
        monkeypatch.setattr(step_lstm, "MAX_TABLE_BYTES", 0)
    decoder = tiny_model(seed=5, input_feeding=input_feeding).decoder.eval()
    layers, hidden = decoder.rnn.num_layers, decoder.rnn.hidden_size
    gen = torch.Generator().manual_seed(7)
    rows = 6
    tokens = torch.randint(0, decoder.embedding.num_embeddings, (rows,), generator=gen)
    fed = torch.randn(rows, decoder.output_dim, generator=gen) if input_feeding else None
    h = torch.randn(layers, rows, hidden, generator=gen)
    c = torch.randn(layers, rows, hidden, generator=gen)

    def both():
        weights = step_lstm.step_weights(decoder.rnn, decoder.embedding, decoder._step_weights)
        decoder._step_weights = weights
        assert (weights.table is not None) == table
        out, h1, c1 = step_lstm.lstm_step(weights, decoder.embedding, tokens, fed, h, c)
        x = decoder.embedding(tokens)
        x = x if fed is None else torch.cat([x, fed], dim=1)
        ref, (h2, c2) = decoder.rnn(x.unsqueeze(1), (h, c))
        torch.testing.assert_close(out, ref.squeeze(1), atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(h1, h2, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(c1, c2, atol=1e-6, rtol=1e-5)
        return weights

    with torch.no_grad():
        first = both()
        assert both() is first  # unchanged weights: laid out once
        decoder.rnn.weight_ih_l0.mul_(1.5)  # as an optimizer step would
        decoder.embedding.weight.add_(0.1)
        assert both() is not first


@pytest.mark.parametrize("input_feeding", [False, True])
def test_copying_decoder_steps_as_it_trains_and_outputs_a_distribution(input_feeding: bool):
    model = tiny_model(VOCAB, copy=True, input_feeding=input_feeding)
    src, lengths = random_batch(5, VOCAB, seed=4)
    tgt_in = decoder_input(5, 6)
    with torch.no_grad():
        forward = torch.log_softmax(model(src, lengths, tgt_in), -1)
        stepped = step_through(model, src, lengths, tgt_in)
        padded_alone = model(src[:1, : int(lengths[0])], lengths[:1], tgt_in[:1])
    assert torch.allclose(forward, stepped, atol=1e-5)
    assert torch.allclose(forward.exp().sum(-1), torch.ones(5, 6), atol=1e-4)
    assert torch.allclose(torch.log_softmax(padded_alone, -1)[0], forward[0], atol=1e-5)


def test_a_closed_copy_gate_puts_all_mass_on_the_source_tokens():
    model = tiny_model(VOCAB, copy=True)
    assert model.decoder.copy_gate is not None
    with torch.no_grad():
        model.decoder.copy_gate.weight.zero_()
        model.decoder.copy_gate.bias.fill_(-30.0)  # p_gen ~ 0: copy only
        src, lengths = random_batch(3, VOCAB, seed=6)
        log_probs, _, attn = model.step(
            torch.full((3,), BOS_ID), model.init_state(model.encode(src, lengths))
        )
    probs = log_probs.exp()
    for row in range(3):
        ids = src[row, : int(lengths[row])]
        assert float(probs[row, ids.unique()].sum()) == pytest.approx(1.0, abs=1e-4)
        expected = torch.zeros(VOCAB).scatter_add(0, ids, attn[row, : int(lengths[row])])
        assert torch.allclose(probs[row], expected, atol=1e-4)


@pytest.mark.parametrize("input_feeding", [False, True])
def test_unprojected_forward_is_the_output_layers_input(input_feeding: bool):
    model = tiny_model(VOCAB, input_feeding=input_feeding)
    src, lengths = random_batch(4, VOCAB)
    tgt_in = decoder_input(4, 6)
    with torch.no_grad():
        logits = model(src, lengths, tgt_in)
        features = model(src, lengths, tgt_in, project=False)
    assert features.shape == (4, 6, model.decoder.output_dim)
    assert torch.allclose(model.decoder.project(features), logits, atol=1e-6)
    copying = tiny_model(VOCAB, copy=True, share_embeddings=True)
    with pytest.raises(ValueError, match="copying decoder"):
        copying(src, lengths, tgt_in, project=False)


def test_reorder_within_sources_keeps_the_source_side_and_moves_the_rest():
    model = tiny_model(VOCAB, input_feeding=True, copy=True, share_embeddings=True)
    src, lengths = random_batch(2, VOCAB)
    expand = torch.tensor([0, 0, 0, 1, 1, 1])  # 3 hypotheses per sentence
    state = model.reorder(model.init_state(model.encode(src, lengths)), expand)
    _, state, _ = model.step(torch.arange(4, 10), state)  # rows now differ
    index = torch.tensor([2, 0, 0, 4, 5, 3])  # each row stays within its sentence
    kept = model.reorder(state, index, same_sources=True)
    full = model.reorder(state, index)
    for name in ("memory", "keys", "mask", "src"):
        assert getattr(kept, name) is getattr(state, name)  # not copied
        assert torch.equal(getattr(kept, name), getattr(full, name))
    for name in ("hidden", "cell", "feed"):
        assert torch.equal(getattr(kept, name), getattr(full, name))
    assert not torch.equal(kept.hidden, state.hidden)


@pytest.mark.parametrize("attention", ["general", "bahdanau"])
def test_hypotheses_grouped_per_source_step_as_replicated_ones(attention: str):
    """reorder(..., sources=) keeps one copy of each source for its g hypotheses; stepping
    them gives what stepping g full copies gives, and so does dropping a source."""
    model = tiny_model(VOCAB, attention=attention, input_feeding=True, copy=True)
    model.eval()
    src, lengths = random_batch(3, VOCAB)
    expand = torch.arange(3).repeat_interleave(2)  # 2 hypotheses per sentence
    with torch.no_grad():
        start = model.init_state(model.encode(src, lengths))
        grouped = model.reorder(start, expand, sources=torch.arange(3))
        replicated = model.reorder(start, expand)
        assert grouped.memory.size(0) == 3 and replicated.memory.size(0) == 6
        assert grouped.group == 2
        tokens = torch.arange(4, 10)
        for t in range(3):
            lp_g, grouped, attn_g = model.step(tokens, grouped)
            lp_r, replicated, attn_r = model.step(tokens, replicated)
            torch.testing.assert_close(lp_g, lp_r)
            torch.testing.assert_close(attn_g, attn_r)
            if t == 1:  # sentence 1 finishes: keep the hypotheses of sentences 0 and 2
                rows, sources = torch.tensor([1, 0, 4, 5]), torch.tensor([0, 2])
                grouped = model.reorder(grouped, rows, sources=sources)
                replicated = model.reorder(replicated, rows)
                tokens = tokens[rows]


@pytest.mark.parametrize("lengths", [[5, 3, 5, 2, 3], [4, 4, 4], [2, 3, 4, 5, 6, 7, 8, 9]])
def test_encoder_per_length_runs_equal_the_packed_run(lengths: list[int], monkeypatch):
    """A few lengths run once per length, many are packed: same memory, final states and
    gradients either way."""
    from seq2seq.kernels import encoder_lstm as encoder_module

    model = tiny_model(VOCAB, seed=2)
    src, _ = random_batch(len(lengths), VOCAB, seed=1, min_len=max(lengths), max_len=max(lengths))
    lengths_t = torch.tensor(lengths)
    for row, n in enumerate(lengths):
        src[row, n:] = 0  # PAD after each length
    results = []
    for groups in (encoder_module.MAX_LENGTH_GROUPS, 0):
        monkeypatch.setattr(encoder_module, "MAX_LENGTH_GROUPS", groups)
        model.zero_grad()
        memory, (h, c) = model.encoder(src, lengths_t)
        (memory.square().sum() + h.sum() + c.sum()).backward()
        grads = [p.grad.clone() for p in model.encoder.rnn.parameters()]
        results.append((memory, h, c, grads))
    (m1, h1, c1, g1), (m2, h2, c2, g2) = results
    torch.testing.assert_close(m1, m2, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(h1, h2, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(c1, c2, atol=1e-6, rtol=1e-5)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    for row, n in enumerate(lengths):
        assert not m1[row, n:].any()  # zeros at padding


@pytest.mark.parametrize("lengths", [[5, 5, 5], [5, 3, 5, 2, 3], [2, 3, 4, 5, 6, 7, 8, 9]])
def test_encoder_layer_by_layer_training_equals_nn_lstm(lengths: list[int], monkeypatch):
    """Training with dropout between layers runs one layer at a time (our mask): with
    that mask made all ones it computes what nn.LSTM does without dropout (single length,
    per-length and packed batches; outputs, final states, gradients), and with it the
    layers above the first see dropped inputs."""
    from seq2seq.kernels import encoder_lstm as encoder_module

    model = tiny_model(VOCAB, seed=4)
    encoder = model.encoder.train()
    src, _ = random_batch(len(lengths), VOCAB, seed=3, min_len=max(lengths), max_len=max(lengths))
    lengths_t = torch.tensor(lengths)
    for row, n in enumerate(lengths):
        src[row, n:] = 0

    def run():
        encoder.zero_grad()
        memory, (h, c) = encoder(src, lengths_t)
        (memory.square().sum() + h.sum() + c.sum()).backward()
        return memory, h, c, [p.grad.clone() for p in encoder.rnn.parameters()]

    encoder.rnn.dropout = 0.0
    reference = run()  # nn.LSTM itself (nothing to drop)
    encoder.rnn.dropout = 0.5
    monkeypatch.setattr(encoder_module, "dropout", lambda x, p, training: x)
    layered = run()
    for a, b in zip(reference[:3], layered[:3], strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    for a, b in zip(reference[3], layered[3], strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    monkeypatch.undo()
    dropped = run()
    assert not torch.allclose(dropped[0], reference[0])  # the upper layer saw a mask
    torch.testing.assert_close(dropped[1][0], reference[1][0])  # the first layer did not


def test_search_sees_the_weights_after_a_fused_optimizer_step():
    """A fused Adam step updates the weights without bumping their versions: searching
    after training must still use the new weights (the decoder re-lays them out)."""
    model = tiny_model(VOCAB, seed=3, input_feeding=True)
    src, lengths = random_batch(3, VOCAB, seed=2)
    tokens = torch.full((3,), BOS_ID)

    def first_step(m):
        m.eval()
        with torch.no_grad():
            return m.step(tokens, m.init_state(m.encode(src, lengths)))[0]

    first_step(model)  # lays the search weights out
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)
    model(src, lengths, decoder_input(3, 4)).square().mean().backward()
    optimizer.step()
    fresh = tiny_model(VOCAB, seed=3, input_feeding=True)
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(first_step(model), first_step(fresh))
