"""Search over the decoder contract: greedy, beam and sampling."""

from seq2seq.search.beam import beam_search
from seq2seq.search.greedy import greedy_search
from seq2seq.search.hypothesis import Hypothesis, max_lengths
from seq2seq.search.sampling import sample_search

__all__ = ["Hypothesis", "beam_search", "greedy_search", "max_lengths", "sample_search"]
