"""Search over the decoder contract: greedy and beam (sampling comes with the shell issue)."""

from seq2seq.search.beam import beam_search
from seq2seq.search.greedy import greedy_search
from seq2seq.search.hypothesis import Hypothesis, max_lengths

__all__ = ["Hypothesis", "beam_search", "greedy_search", "max_lengths"]
