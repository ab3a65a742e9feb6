r"""The checks that the exercise notebooks' test cells call, with hints that name the likely bug.

Each ``check_*`` function runs a learner's function on a few small inputs in float64 (a random
batch, a batch of one, a zero state, a single time step, padding, ...) and compares the result
with a reference: PyTorch's own kernels (``torch.lstm_cell`` is what ``torch.nn.LSTMCell``
calls), torch autograd, or course_lib's implementation, itself tested against ``torch.nn``.
Where it matters, the gradients are compared too.

When an answer is off, the check computes a handful of *known mistakes* on the same input: tanh
instead of the sigmoid on a gate, the gates sliced in the wrong order, no forget gate, the GRU's
reset gate before the matrix, a sequence reversed over its padding, a softmax over the wrong
axis, ... If the learner's output equals one of them, the ``AssertionError`` names that mistake
and how to fix it; otherwise it says where the largest difference is, with the shapes.

The contract with the exercise notebooks (``docs/GRADING.md``):

* a ``NotImplementedError`` from the learner's function (a blank exercise) propagates unchanged;
* any other exception from it becomes an ``AssertionError`` that describes the inputs, chained
  to the original exception so its traceback stays visible;
* a check never changes the global random state, and prints one line starting with ✓ when it
  passes.

Every check takes ``seed``, so that a hidden test can run it again on other random inputs.

==============================  =====================================================  =========
check                           the learner's function                                 exercise
==============================  =====================================================  =========
``check_rnn_step``              ``rnn_step(x, h_prev, W_ih, W_hh, b) -> h`` (NumPy)    1.1
``check_rnn_forward``           ``rnn_forward(xs, h0, W_ih, W_hh, b) -> hs``           1.2
``check_rnn_backward``          ``rnn_backward(xs, h0, hs, W_ih, W_hh, b, dhs)``       1.3
``check_lstm_step``             ``lstm_step(x, h_prev, c_prev, weight_ih, ...)``       2.1
``check_forget_bias``           ``set_forget_bias(cell, value)``                       2.2
``check_half_life``             ``forget_half_life(forget_bias) -> steps``             2.3
``check_lstm_layer``            ``lstm_layer(xs, lengths, weight_ih, ...)``            2.4
``check_gru_step``              ``gru_step(x, h_prev, weight_ih, ...) -> h``           3.1
``check_count_parameters``      ``count_parameters(kind, input_size, hidden_size, ...)``  3.2
``check_peephole_step``         ``peephole_step(x, h_prev, c_prev, ..., weight_co)``   4.1
``check_peephole_count``        ``peephole_parameter_count(input_size, hidden_size)``  4.2
``check_reverse_within_lengths``  ``reverse_within_lengths(x, lengths)``               5.1
``check_bidirectional``         ``bidirectional(x, lengths, forward_rnn, backward_rnn)``  5.2
``check_final_states``          ``final_states(output, lengths) -> (B, 2H)``           5.3
``check_stacked_bigru``         ``StackedBiGRU(input_size, hidden_size, dropout)``     (5.4)
``check_trained_tagger``        ``train_tagger(train) -> a tagger that reaches 95%``   5.4
``check_additive_scores``       ``additive_scores(query, keys, W_q, W_k, b, v)``       6.1
``check_masked_softmax``        ``masked_softmax(scores, mask) -> weights``            6.2
``check_attention``             ``scaled_dot_attention(query, keys, values, mask)``    6.3
``check_tbptt``                 ``train_tbptt(model, data, seq_len, passes, lr, ...)``  7.1
``check_temperature_softmax``   ``temperature_softmax(logits, temperature)``           7.2
==============================  =====================================================  =========

The shared machinery is in :mod:`course_lib.checks.core`, the checks of each chapter in their
own module (``ch01_rnn`` ... ``ch07_language_model``). Each check is declared once (a ``Check``) and
graded in two steps, ``collect`` (the learner's outputs) and ``judge`` (the comparison and the
hint). A learner's run does both in the kernel; an instructor's grading run
(``python -m course_lib.instructor.grade --instructor``) does only the first there, on inputs
from a secret seed (:mod:`course_lib.checks.evidence`), and judges in the grader's process.
"""

from course_lib.checks.ch01_rnn import check_rnn_backward, check_rnn_forward, check_rnn_step
from course_lib.checks.ch02_lstm import (
    check_forget_bias,
    check_half_life,
    check_lstm_layer,
    check_lstm_step,
)
from course_lib.checks.ch03_gru import check_count_parameters, check_gru_step
from course_lib.checks.ch04_peephole import check_peephole_count, check_peephole_step
from course_lib.checks.ch05_bidirectional import (
    check_bidirectional,
    check_final_states,
    check_reverse_within_lengths,
    check_stacked_bigru,
    check_trained_tagger,
)
from course_lib.checks.ch06_attention import (
    check_additive_scores,
    check_attention,
    check_masked_softmax,
)
from course_lib.checks.ch07_language_model import check_tbptt, check_temperature_softmax

__all__ = [
    "check_additive_scores",
    "check_attention",
    "check_bidirectional",
    "check_count_parameters",
    "check_final_states",
    "check_forget_bias",
    "check_gru_step",
    "check_half_life",
    "check_lstm_layer",
    "check_lstm_step",
    "check_masked_softmax",
    "check_peephole_count",
    "check_peephole_step",
    "check_reverse_within_lengths",
    "check_rnn_backward",
    "check_rnn_forward",
    "check_rnn_step",
    "check_stacked_bigru",
    "check_tbptt",
    "check_temperature_softmax",
    "check_trained_tagger",
]
