"""Attention, drawn: an RNN encoder–decoder with attention weights, and the self-attention block.

Chapter 06's equations: α_{t,j} = softmax_j score(q_t, k_j), c_t = Σ_j α_{t,j} v_j (Bahdanau,
Cho & Bengio 2015; Luong, Pham & Manning 2015); in the encoder–decoder the query is the
decoder's state s_{t-1} and keys and values are the encoder's states h_j. Self-attention
(Vaswani et al. 2017): every position's q_i, k_i, v_i come from its own input, and
z_i = Σ_j α_{i,j} v_j. The weights shown are an example, not a trained model's.
"""

from __future__ import annotations

from course_lib.diagrams.svg import PALETTE, Drawing

EXAMPLE_WEIGHTS = (0.06, 0.81, 0.09, 0.04)  # one output step looking mostly at "dog"
SOURCE = ("the", "dog", "ate", "…")


def _weights(d: Drawing, xs, base_y: float, target: tuple[float, float], weights) -> None:
    """α as bars over the positions, and lines to the weighted sum, as thick as their α."""
    for x, alpha in zip(xs, weights):
        height = 70 * alpha
        d.rect(x - 9, base_y - height, 18, height, fill="alpha", radius=2)
        d.text(
            x + 14,
            base_y - height / 2 + 4,
            f"{alpha:.2f}",
            size=12,
            anchor="start",
            quantity="alpha",
            italic=False,
        )
        d.wire(
            [(x, base_y - height - 2), target],
            "alpha",
            width=1 + 7 * alpha,
            arrow=False,
            opacity=0.3 + 0.7 * alpha,
        )
    d.op(*target, "Σ")


def encoder_decoder() -> str:
    """An LSTM encoder–decoder; one decoder step's attention weights over the encoder states."""
    d = Drawing(
        960,
        480,
        "An encoder–decoder with attention",
        "An LSTM encoder reads x_1 to x_S into states h_1 to h_S. The decoder starts from "
        "s_0 = h_S. At output step t its previous state s_{t-1} is the query: it scores every "
        "h_j, a softmax turns the scores into weights α_{t,j} (drawn as bars, here mostly on "
        "'dog'), and the context c_t = Σ_j α_{t,j} h_j enters the decoder step and its output.",
    )
    enc = [110, 220, 330, 440]
    dec = [620, 760, 880]
    cell_y, state_y = 380, 300
    for j, x in enumerate(enc, start=1):
        d.layer(x, cell_y, "LSTM", "h", width=70, height=40)
        d.wire([(x, 446), (x, cell_y + 20)], "x")
        name = f"_{j}" if j < len(enc) else "_S"
        d.text(x, 462, "x" + name, quantity="x")
        d.note(x + 26, 462, f"“{SOURCE[j - 1]}”", size=11, anchor="start")
        d.wire([(x, cell_y - 20), (x, state_y + 12)], "h")
        d.text(x - 8, state_y + 6, "h" + name, anchor="end", size=15, quantity="h")
    for left, right in zip(enc[:-1], enc[1:]):
        d.wire([(left + 35, cell_y), (right - 35, cell_y)], "h")
    d.wire([(enc[-1] + 35, cell_y), (dec[0] - 35, cell_y)], "s")
    d.text(530, cell_y - 8, "s_0 = h_S", size=14, quantity="s")
    for t, x in enumerate(dec, start=1):
        d.layer(x, cell_y, "LSTM", "s", width=70, height=40)
        word = "y_{t-1}" if t == 2 else ("<start>" if t == 1 else "y_t")
        d.wire([(x, 446), (x, cell_y + 20)], "ink")
        d.text(x, 462, word if t != 1 else "", size=14)
        if t == 1:
            d.note(x, 462, "start symbol", size=12, fill=PALETTE["ink"])
    for left, right in zip(dec[:-1], dec[1:]):
        d.wire([(left + 35, cell_y), (right - 35, cell_y)], "s")
    d.text((dec[0] + dec[1]) / 2, cell_y - 8, "s_{t-1}", size=14, quantity="s")

    # Step t: the query scores every h_j; the weights make the context.
    sigma = (560, 150)
    _weights(d, enc, state_y - 6, sigma, EXAMPLE_WEIGHTS)
    d.text(
        275, 92, "α_{t,j} = softmax_j score(s_{t-1}, h_j)", size=15, quantity="alpha", italic=False
    )
    d.wire([(dec[0], cell_y - 20), (dec[0], 87), (392, 87)], "s", dash="5 4")
    d.note(dec[0] + 8, 250, "query s_{t-1}", size=12, fill=PALETTE["s"], anchor="start")
    d.wire([(573, 150), (dec[1] - 12, 150), (dec[1] - 12, cell_y - 20)], "ctx", width=2.5)
    d.text(630, 140, "c_t = Σ_j α_{t,j} h_j", size=15, quantity="ctx", anchor="start", italic=False)
    d.wire([(dec[1] + 12, cell_y - 20), (dec[1] + 12, 92)], "s")
    d.dot(dec[1] - 12, 150, "ctx")
    d.wire([(dec[1] - 12, 150), (dec[1] - 12, 120), (dec[1] - 2, 120), (dec[1] - 2, 92)], "ctx")
    d.rect(dec[1] - 50, 56, 100, 34, fill="paper", stroke="ink", radius=6)
    d.text(dec[1], 79, "W_o[s_t; c_t]", size=14, italic=False)
    d.wire([(dec[1] + 50, 73), (900, 73)], "ink")
    d.text(906, 78, "p(y_t)", size=15, anchor="start")
    d.text(dec[1] + 20, 250, "s_t", size=14, quantity="s", anchor="start")
    d.note(275, 30, "encoder", size=14, fill=PALETTE["ink"], weight="bold")
    d.note(760, 30, "decoder, output step t", size=14, fill=PALETTE["ink"], weight="bold")
    d.note(275, 48, "bar height: how much step t looks at h_j", size=12)
    return d.svg()


def self_attention() -> str:
    """Self-attention for one position, and the block SelfAttentionClassifier is built of."""
    d = Drawing(
        940,
        470,
        "Self-attention, and the block around it",
        "Left: every position j turns its input (token plus position embedding) into a query "
        "q_j, a key k_j and a value v_j. Position 2's query is compared with every key, "
        "q_2·k_j/√d, a softmax gives the weights α_{2,j}, and z_2 = Σ_j α_{2,j} v_j. There is "
        "no recurrence. Right: the block of SelfAttentionClassifier, post-norm: x + "
        "self-attention, LayerNorm, x + feed-forward, LayerNorm, then the mean over positions "
        "and a linear classifier.",
    )
    xs = [90, 210, 330, 450]
    query = 1  # position 2 (index 1) asks
    for j, x in enumerate(xs, start=1):
        d.rect(x - 40, 400, 80, 28, fill="paper", stroke="x", radius=14)
        d.text(x, 419, f"x_{j} + p_{j}", size=14, quantity="x", italic=False)  # token + position
        d.note(x, 446, f"“{SOURCE[j - 1]}”", size=12)
        for dx, name in ((-26, "q"), (0, "k"), (26, "v")):
            d.wire([(x, 400), (x, 390), (x + dx, 390), (x + dx, 366)], "x", arrow=False)
            d.rect(x + dx - 11, 344, 22, 22, fill=name, radius=3)
            d.text(x + dx, 360, name, size=14, fill=PALETTE["paper"])
    d.note(270, 18, "with e_j = x_j + p_j:  q_j = W^Q e_j,  k_j = W^K e_j,  v_j = W^V e_j", size=12)
    d.note(270, 34, "(one set of W^Q, W^K, W^V per head)", size=12)
    qx = xs[query] - 26
    d.wire([(qx, 344), (qx, 322), (30, 322), (30, 160)], "q", dash="5 4")
    d.note(36, 150, "q_2 · k_j / √d for every j,", size=12, anchor="start", fill=PALETTE["q"])
    d.note(36, 166, "softmax over j", size=12, anchor="start", fill=PALETTE["q"])
    _weights(d, xs, 300, (270, 110), EXAMPLE_WEIGHTS)
    d.wire([(270, 97), (270, 56)], "alpha")
    d.text(
        280, 72, "z_2 = Σ_j α_{2,j} v_j", size=15, anchor="start", quantity="alpha", italic=False
    )

    # The block, bottom to top.
    bx, width = 760, 190
    steps = (
        (410, "x_j + p_j", "x"),
        (350, "multi-head self-attention", "alpha"),
        (290, "add & LayerNorm", None),
        (230, "feed-forward", None),
        (170, "add & LayerNorm", None),
        (110, "mean over positions", None),
        (50, "linear → classes", None),
    )
    for (y, label, quantity), (next_y, _, _) in zip(steps, (*steps[1:], (0, "", None))):
        stroke = quantity or "ink"
        d.rect(bx - width / 2, y - 16, width, 32, fill="paper", stroke=stroke, radius=6)
        d.note(bx, y + 5, label, size=13, fill=PALETTE[stroke] if quantity else PALETTE["ink"])
        if next_y:
            d.wire([(bx, y - 16), (bx, next_y + 16)], "ink")
    for start, end in ((410, 290), (290, 170)):  # the residual connections
        d.wire(
            [
                (bx + width / 2, start),
                (bx + width / 2 + 24, start),
                (bx + width / 2 + 24, end),
                (bx + width / 2 + 2, end),
            ],
            "ink",
            dash="4 3",
        )
    d.note(bx, 454, "SelfAttentionClassifier: one block, post-norm", size=12)
    return d.svg()
