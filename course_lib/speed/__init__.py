"""Opt-in speed paths, kept apart from the code learners read; no lecture imports them.

* :mod:`course_lib.speed.fused`: ``FusedLSTM`` / ``FusedPeepholeLSTM``, the gate math of each
  step compiled from ``csrc/lstm_gates.c`` (needs a C compiler), BPTT written by hand.
* :mod:`course_lib.speed.graphed`: CUDA-graph replay of a layer's forward and backward.

Both give the same numbers as :mod:`course_lib.layers` (tested); they only make them faster.
"""
