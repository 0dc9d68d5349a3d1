"""Vocabulary shortlists: the candidates hold what they must; a shortlisted step is the
full step renormalised over the candidates (copying and int8 too); search over the whole
vocabulary as a shortlist is the plain search; combinations that need the whole
vocabulary are refused; a run's table is built by ``seq2seq shortlist``."""

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import random_batch, run_cli, tiny_model

from seq2seq.config import ConfigError, Search
from seq2seq.data.lexicon import Lexicon, read_lexicon
from seq2seq.data.tokenizer import BOS_ID, EOS_ID
from seq2seq.inference import Translator, search_batch
from seq2seq.kernels.int8 import Int8Linear, int8_supported
from seq2seq.model.ensemble import Ensemble
from seq2seq.search.shortlist import ROUND_TO, Candidates, Shortlist, Shortlisted

VOCAB = 200


def _lexicon(vocab: int = VOCAB) -> Lexicon:
    """Source id s translates to (s * 7) % vocab and (s * 11) % vocab (when not special);
    target ids are frequent in order 150, 151, ..."""
    best = torch.full((vocab, 2), -1, dtype=torch.long)
    for s in range(4, vocab):
        best[s] = torch.tensor([max((s * 7) % vocab, 4), max((s * 11) % vocab, 4)])
    top = min(150, vocab)
    frequent = torch.cat([torch.arange(top, vocab), torch.arange(4, top)])
    counts = torch.arange(len(frequent), 0, -1)
    return Lexicon(best, torch.full((vocab, 2), 0.5), frequent, counts)


def test_candidates_hold_specials_frequent_translations_sources_and_prefix():
    src = torch.tensor([[10, 11, EOS_ID, 0], [12, 13, 14, EOS_ID]])
    prefix = torch.tensor([[99, 0], [98, 97]])
    shortlist = Shortlist(_lexicon(), VOCAB, translations=1, frequent=5, copy_source=True)
    found = shortlist.candidates(src, prefix)
    ids = found.ids
    chosen = set(ids.tolist())
    assert ids.tolist() == sorted(chosen)
    assert len(ids) % ROUND_TO == 0  # filled up with the next most frequent ids
    assert set(range(150, 150 + 30)) <= chosen
    own = [set(ids[found.allowed[b]].tolist()) for b in range(2)]
    common = {0, 1, 2, 3, *range(150, 155)}
    assert own[0] == common | {70, 77} | {10, 11} | {99}
    assert own[1] == common | {84, 91, 98} | {12, 13, 14} | {98, 97}
    without = Shortlist(_lexicon(), VOCAB, translations=1, frequent=5, copy_source=False)
    found = without.candidates(src)
    assert set(found.ids[found.allowed[0]].tolist()) == common | {70, 77}


def test_candidates_never_exceed_the_vocabulary():
    shortlist = Shortlist(_lexicon(70), 70, translations=2, frequent=1000, copy_source=True)
    found = shortlist.candidates(torch.tensor([[5, 6, EOS_ID]]))
    assert found.ids.tolist() == list(range(70))
    assert bool(found.allowed.all())


def _everything(batch: int, vocab: int = VOCAB) -> Candidates:
    return Candidates(torch.arange(vocab), torch.ones(batch, vocab, dtype=torch.bool))


@pytest.mark.parametrize("copy", [False, True])
def test_shortlisted_step_is_the_full_step_renormalised(copy: bool):
    model = tiny_model(VOCAB, seed=3, copy=copy)
    src, lengths = random_batch(3, VOCAB, seed=1)
    ids = torch.tensor([0, 1, 2, 3, *sorted(set(src.view(-1).tolist()) - {0, 3}), 120, 140])
    ids = ids.unique()
    allowed = torch.ones(3, len(ids), dtype=torch.bool)
    allowed[1, -1] = False  # the second sentence may not use id 140
    tokens = torch.tensor([BOS_ID, int(ids[5]), int(ids[6])])
    with torch.no_grad():
        state = model.init_state(model.encode(src, lengths))
        full, _, attn = model.step(tokens, state)
        short = Shortlisted(model, Candidates(ids, allowed))
        listed = short.init_state(short.encode(src, lengths))
        part, _, part_attn = short.step(short.positions(tokens), listed)
    assert part.shape == (3, len(ids))
    torch.testing.assert_close(part_attn, attn)
    torch.testing.assert_close(part.exp().sum(-1), torch.ones(3))
    assert part[1, -1] == float("-inf") and bool(part[[0, 2], -1].isfinite().all())
    if not copy:  # softmax over a subset = the full softmax renormalised over it
        torch.testing.assert_close(part[0], torch.log_softmax(full[0, ids], dim=-1))
        torch.testing.assert_close(part[1, :-1], torch.log_softmax(full[1, ids[:-1]], dim=-1))
    else:  # the copied mass lands on the same source tokens, within the subset
        gained = part.exp() - torch.softmax(full[:, ids], -1)
        assert bool((gained[:, ids.tolist().index(int(src[0, 0]))] != 0).any())


@pytest.mark.skipif(not int8_supported(), reason="no oneDNN int8 kernels in this torch build")
def test_int8_rows_are_the_full_layers_columns():
    torch.manual_seed(0)
    layer = Int8Linear(torch.randn(300, 32), torch.randn(300))
    x = torch.rand(7, 32) * 2 - 1
    ids = torch.tensor([0, 5, 17, 299, 123])
    torch.testing.assert_close(layer.rows(ids)(x), layer(x)[:, ids], rtol=0, atol=0)


@pytest.mark.parametrize(
    "search",
    [Search(beam_size=1), Search(beam_size=4, nbest=2), Search(sampling=True, seed=2, nbest=2)],
    ids=["greedy", "beam", "sampling"],
)
def test_the_whole_vocabulary_as_a_shortlist_searches_as_without(search: Search):
    model = tiny_model(VOCAB, seed=5)
    src, lengths = random_batch(4, VOCAB, seed=6)
    plain = search_batch(model, src, lengths, search, generator=torch.Generator().manual_seed(1))
    short = Shortlisted(model, _everything(len(src)))
    listed = short.vocabulary_ids(
        search_batch(short, src, lengths, search, generator=torch.Generator().manual_seed(1))
    )
    for a, b in zip(plain, listed, strict=True):
        assert [h.tokens for h in a] == [h.tokens for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)


def test_outputs_use_candidates_only_and_map_back_to_vocabulary_ids():
    model = Ensemble([tiny_model(VOCAB, seed=5), tiny_model(VOCAB, seed=6)])
    src, lengths = random_batch(3, VOCAB, seed=7)
    ids = torch.tensor([0, 1, 2, 3, 40, 60, 80, 100, 120, 199])
    short = Shortlisted(model, Candidates(ids, torch.ones(3, len(ids), dtype=torch.bool)))
    hyps = short.vocabulary_ids(search_batch(short, src, lengths, Search(beam_size=3, nbest=3)))
    produced = {t for sent in hyps for h in sent for t in h.tokens}
    assert produced and produced <= {40, 60, 80, 100, 120, 199}


@pytest.fixture(scope="module")
def listed_run(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained toy run, copied, with its lexical table built by the command."""
    run = tmp_path_factory.mktemp("listed") / "toy"
    shutil.copytree(trained, run)
    return run


def test_shortlist_command_then_translate(listed_run: Path, toy_env: Path, monkeypatch, capsys):
    code, _, err = run_cli(
        ["shortlist", str(listed_run), "--translations", "3"], "", monkeypatch, capsys
    )
    assert code == 0, err
    translator = Translator.from_checkpoint(listed_run)
    pieces = translator.src_tok.vocabulary(), translator.tgt_tok.vocabulary()
    lexicon = read_lexicon(listed_run / "shortlist.tsv", *pieces)
    for digit in "1234":  # the reversal task copies digits: each one's best is itself
        (sid,) = translator.src_tok.encode([digit])[0]
        assert int(lexicon.best[sid, 0]) == sid
    lines = ["1 2 3", "4 5 6 7 8"]
    plain = translator.translate(lines)
    with translator.using(shortlist=3, shortlist_frequent=0):
        assert translator.translate(lines) == plain
        prefixed = translator.hypotheses(lines, prefixes=["9", ""])
    assert translator.detokenize(prefixed[0][0]).startswith("9")


def test_refusals_name_the_setting(listed_run: Path, trained: Path, tmp_path: Path):
    translator = Translator.from_checkpoint(listed_run, search={"shortlist": 5})
    with pytest.raises(ConfigError, match=r"search\.shortlist cannot be combined with required"):
        translator.hypotheses(["1 2 3"], required=[["4"]])
    bare = tmp_path / "bare"
    shutil.copytree(trained, bare)
    (bare / "shortlist.tsv").unlink(missing_ok=True)
    lonely = Translator.from_checkpoint(bare, search={"shortlist": 5})
    with pytest.raises(ConfigError, match=f"no lexical table {bare}.*seq2seq shortlist {bare}"):
        lonely.translate(["1 2 3"])


def test_a_grammar_with_a_shortlist_is_refused():
    from seq2seq.data.batching import IdArray
    from seq2seq.search.batches import decode_ids

    shortlist = Shortlist(_lexicon(), VOCAB, translations=2, frequent=5, copy_source=False)
    grammar = object()  # never consulted: the refusal comes first
    with pytest.raises(ConfigError, match=r"cannot be combined with search\.constrained"):
        decode_ids(
            tiny_model(VOCAB),
            IdArray.from_lists([[5, 6]]),
            Search(),
            torch.device("cpu"),
            constraint=grammar,  # type: ignore[arg-type]
            shortlist=shortlist,
        )


@pytest.mark.parametrize("search", [Search(beam_size=1), Search(beam_size=3, nbest=2)])
def test_a_sentences_output_does_not_depend_on_its_batch(search: Search):
    """Each sentence searches its own candidates, whatever the batch's union holds."""
    from seq2seq.data.batching import IdArray
    from seq2seq.search.batches import decode_ids

    model = tiny_model(VOCAB, seed=8)
    shortlist = Shortlist(_lexicon(), VOCAB, translations=2, frequent=3, copy_source=True)
    src = IdArray.from_lists([[5, 9, 17], [44, 45, 46, 47], [120, 121], [7]])
    cpu = torch.device("cpu")
    together = decode_ids(model, src, replace(search, batch_size=4), cpu, shortlist=shortlist)
    alone = decode_ids(model, src, replace(search, batch_size=1), cpu, shortlist=shortlist)
    assert [[h.tokens for h in r] for r in together] == [[h.tokens for h in r] for r in alone]
    for row, hyps in zip([[5, 9, 17], [44, 45, 46, 47], [120, 121], [7]], together, strict=True):
        own = shortlist.candidates(torch.tensor([[*row, EOS_ID]]))
        usable = set(own.ids[own.allowed[0]].tolist())
        assert all(set(h.tokens) <= usable for h in hyps)
