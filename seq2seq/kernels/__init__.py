"""Performance paths beside the readable model: each computes what a plain PyTorch
expression in model/ (or search/, training/) computes, faster on our hardware, and is
tested equal to it. The model chooses them in one place each (the encoder's LSTM run,
the decoder's step layout and its int8 switch, the input-feeding loop); nothing here
imports the model.

- ``encoder_lstm``: the encoder's LSTM over a padded batch (per length, packed, layer by
  layer with our dropout mask);
- ``input_feeding``: the input-feeding decoder's teacher-forced loop as one autograd node;
- ``step_lstm``: the decoder's LSTM layers laid out for one search step (fp32 or int8);
- ``int8``: int8 linear layers with oneDNN, for decoding on CPU;
- ``dropout``: dropout masks drawn cheaply;
- ``candidates``: beam search's top-k over K x V candidates without building them;
- ``fused_loss``: label-smoothed cross-entropy with a closed-form gradient, fused with
  the output projection chunk by chunk (the logits never exist whole);
- ``logits``: float32 logits with the bias added after the product.
"""
