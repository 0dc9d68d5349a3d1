"""Query expansion with a query_expansion run: diverse rewrites and a weighted bag of terms.

For each query (with the earlier turns of its conversation, questions or rewrites, as context):
- rewrites: the beam's n best plus n samples (nucleus, the recipe's temperature), merged
  and deduplicated (case, spacing and final punctuation ignored), ranked by mean token
  log-probability, so beam outputs and samples compare on one scale;
- terms: the model's own key-term outputs (beam n-best of the ``terms:`` mode) and the
  content words of the rewrites. Within each of the two groups a hypothesis weighs its
  posterior share of the group (softmax of the sequence log-probabilities), a term gets
  the sum of the weights of the hypotheses that contain it (its expected count), the two
  groups count half each; terms with less than 0.1% of the bag are dropped and the bag
  is normalised to sum to 1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from seq2seq.inference import Translator
from seq2seq.search import Hypothesis
from seq2seq.tasks.query_expansion.canard import source_text, split_terms

_STOPWORD_TEXT = """a about above after again against all also am an and any are as at be
    because been before being below between both but by can could did do does doing down
    during each else
    ever few for from further get got had has have having he her here hers him his how i if
    in into is it its just know let like made make many me more most much my no nor not now
    of off on once one only or other our out over own same she should so some such tell than
    that the their them then there these they this those through to too under until up upon
    us very was we were what when where which while who whom whose why will with would you
    your"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_WORD = re.compile(r"[\w'-]+")


@dataclass
class Expansion:
    query: str
    context: list[str]
    rewrites: list[tuple[str, float]] = field(default_factory=list)  # text, mean log-prob
    terms: list[tuple[str, float]] = field(default_factory=list)  # term, weight (sum 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "context": self.context,
            "rewrites": [{"text": t, "score": round(s, 4)} for t, s in self.rewrites],
            "terms": [{"term": t, "weight": round(w, 4)} for t, w in self.terms],
        }

    def text(self) -> str:
        lines = [f"query: {self.query}"]
        lines += [f"  {s:7.3f}  {t}" for t, s in self.rewrites]
        lines.append("terms: " + ", ".join(f"{t} ({w:.3f})" for t, w in self.terms))
        return "\n".join(lines)


def content_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` that are not stopwords, in order, distinct."""
    words = (w.strip("'-").lower() for w in _WORD.findall(text))
    return list(dict.fromkeys(w for w in words if len(w) > 1 and w not in STOPWORDS))


def _normal(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(" ?.!")


def _mean_log_prob(hyp: Hypothesis) -> float:
    return hyp.log_prob / max(len(hyp.token_scores), 1)


def _posterior(log_probs: Sequence[float]) -> list[float]:
    if not log_probs:
        return []
    top = max(log_probs)
    weights = [math.exp(lp - top) for lp in log_probs]
    total = sum(weights)
    return [w / total for w in weights]


MIN_WEIGHT = 1e-3  # terms below this share of the bag are dropped (unlikely samples' words)


def _bag(groups: list[list[tuple[list[str], float]]]) -> list[tuple[str, float]]:
    """Merge groups of (terms, log-prob) hypotheses into one bag whose weights sum to 1;
    terms under ``MIN_WEIGHT`` are dropped and the rest renormalised."""
    live = [g for g in groups if any(terms for terms, _ in g)]
    weights: dict[str, float] = {}
    for group in live:
        with_terms = [(terms, lp) for terms, lp in group if terms]
        shares = _posterior([lp for _, lp in with_terms])
        for (terms, _), share in zip(with_terms, shares, strict=True):
            for term in terms:
                weights[term] = weights.get(term, 0.0) + share / len(live)
    total = sum(weights.values()) or 1.0
    kept = {t: w for t, w in weights.items() if w / total >= MIN_WEIGHT}
    total = sum(kept.values()) or 1.0
    return sorted(((t, w / total) for t, w in kept.items()), key=lambda kv: (-kv[1], kv[0]))


def expand(
    translator: Translator,
    queries: Sequence[tuple[str, Sequence[str]]],
    n: int = 10,
    top_p: float = 0.9,
) -> list[Expansion]:
    """Expansions of (query, context) pairs, searched in batches."""
    rewrite_src = [source_text("rewrite", q, list(c)) for q, c in queries]
    terms_src = [source_text("terms", q, list(c)) for q, c in queries]
    beam = {"beam_size": max(n, translator.search.beam_size), "nbest": n, "sampling": False}
    with translator.using(**beam):
        beam_rewrites = translator.hypotheses(rewrite_src)
        beam_terms = translator.hypotheses(terms_src)
    # coverage is a beam score (validation refuses it with sampling)
    with translator.using(sampling=True, nbest=n, top_p=top_p, coverage_penalty=0.0):
        sampled = translator.hypotheses(rewrite_src)
    out = []
    for i, (query, context) in enumerate(queries):
        merged: dict[str, tuple[str, Hypothesis]] = {}
        for hyp in [*beam_rewrites[i], *sampled[i]]:
            text = translator.detokenize(hyp)
            key = _normal(text)
            if key and (key not in merged or _mean_log_prob(hyp) > _mean_log_prob(merged[key][1])):
                merged[key] = (text, hyp)
        ranked = sorted(merged.values(), key=lambda th: -_mean_log_prob(th[1]))
        rewrite_group = [(content_words(text), hyp.log_prob) for text, hyp in ranked]
        term_group = [
            (split_terms(translator.detokenize(hyp)), hyp.log_prob) for hyp in beam_terms[i]
        ]
        out.append(
            Expansion(
                query,
                list(context),
                [(text, _mean_log_prob(hyp)) for text, hyp in ranked[:n]],
                _bag([term_group, rewrite_group]),
            )
        )
    return out


def term_recall(reference: Sequence[str], bag: Sequence[tuple[str, float]], k: int = 0) -> float:
    """Share of the distinct reference terms found in the bag (its top ``k``; 0 = all).
    A multi-word reference term counts when the bag holds it whole or all its words."""
    refs = list(dict.fromkeys(t.lower() for t in reference))
    if not refs:
        return float("nan")
    terms = {t for t, _ in (bag[:k] if k else bag)}
    words = {w for t in terms for w in t.split()}
    found = sum(1 for r in refs if r in terms or all(w in words for w in r.split()))
    return found / len(refs)
