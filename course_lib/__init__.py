"""course_lib: the helper library of the recurrent-networks course.

The notebooks import everything they share from here, so nothing is defined twice. Each module
holds one idea; import the one you need, e.g. ``from course_lib.layers import LSTM``. Nothing
heavy is imported by this file, so ``import course_lib`` is instant.

Shapes
------
Every docstring and shape comment uses one vocabulary:

==  ==========================================================
B   batch: sequences processed together
T   time: steps in a sequence
I   input features at one step
H   hidden units (the size of the hidden state h and cell c)
D   directions: 1, or 2 for a bidirectional layer
L   layers stacked on top of each other
V   vocabulary size (distinct tokens of a task)
C   classes (possible answers of a classifier)
==  ==========================================================

So an LSTM's output is ``(B, T, D*H)`` when batch-first and its final state ``h_n`` is
``(D*L, B, H)``, exactly as in ``torch.nn``.
"""

__version__ = "0.1.0"
