"""seq2seq: a recipe-driven LSTM sequence-to-sequence toolkit."""

__version__ = "0.1.0"
