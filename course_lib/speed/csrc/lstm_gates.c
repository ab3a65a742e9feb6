/* The element-wise gate math of one LSTM step, forward and backward, fused into one loop.
 *
 * course_lib.speed.fused compiles this file with the system's C compiler and calls it through ctypes
 * once per time step, after the step's matrix product (torch.addmm). It is the math of
 * course_lib.cells.lstm_pointwise and peephole_pointwise, written as one pass over the gates
 * instead of about ten separate PyTorch kernels:
 *
 *   i = sigmoid(a_i + w_ci * c_prev)        f = sigmoid(a_f + w_cf * c_prev)
 *   g = tanh(a_g)                           c = f * c_prev + i * g
 *   o = sigmoid(a_o + w_co * c)             h = o * tanh(c)
 *
 * where a = W_ih x_t + b_ih + W_hh h_prev + b_hh are the pre-activations (gate order i|f|g|o, as
 * in torch.nn), and w_ci, w_cf, w_co are diagonal peepholes (all zero for a plain LSTM).
 *
 * Shapes: B batch, H hidden units. Every array is dense and row-major: the gates (B, 4H), the
 * states (B, H), the peepholes (3, H) as w_ci | w_cf | w_co.
 *
 * It is compiled twice: with -DREAL=float for the layers, and with -DREAL=double so that the
 * tests can run gradcheck on it. tanh and sigmoid are written with exp, clamped so that exp never
 * overflows; with -ffast-math the compiler turns the inner loops into vector code.
 */
#include <tgmath.h> /* exp means expf for float, exp for double */
#include <stdint.h>

typedef REAL real;

static inline real sigmoid(real x) {
  x = x < -60 ? -60 : (x > 60 ? 60 : x);
  return 1 / (1 + exp(-x));
}

static inline real tanh_(real x) { /* tanh(x) = 1 - 2 / (1 + e^{2x}) */
  x = x < -30 ? -30 : (x > 30 ? 30 : x);
  return 1 - 2 / (1 + exp(2 * x));
}

/* Forward. On entry `gates` holds the pre-activations a; on return the activations i, f, g, o,
 * which the backward pass needs. Writes c (B, H) and h (B, H). */
void lstm_gates_forward(real *gates, const real *c_prev, const real *peepholes, real *c, real *h,
                        int64_t B, int64_t H) {
  const real *w_ci = peepholes, *w_cf = peepholes + H, *w_co = peepholes + 2 * H;
  for (int64_t b = 0; b < B; ++b) {
    real *a = gates + b * 4 * H;
    const real *c_prev_b = c_prev + b * H;
    real *c_b = c + b * H, *h_b = h + b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      real i = sigmoid(a[j] + w_ci[j] * c_prev_b[j]);
      real f = sigmoid(a[H + j] + w_cf[j] * c_prev_b[j]);
      real g = tanh_(a[2 * H + j]);
      real c_new = f * c_prev_b[j] + i * g;
      real o = sigmoid(a[3 * H + j] + w_co[j] * c_new);
      a[j] = i, a[H + j] = f, a[2 * H + j] = g, a[3 * H + j] = o;
      c_b[j] = c_new;
      h_b[j] = o * tanh_(c_new);
    }
  }
}

/* Backward through one step. `acts`: i, f, g, o from the forward pass. `dh`: dL/dh of this step
 * (from its output and from the step after). `dc`: dL/dc from the step after, replaced by
 * dL/dc_prev. Writes d_gates = dL/da (B, 4H); dL/dh_prev = d_gates W_hh is left to torch.mm. */
void lstm_gates_backward(const real *acts, const real *c_prev, const real *c,
                         const real *peepholes, const real *dh, real *dc, real *d_gates,
                         int64_t B, int64_t H) {
  const real *w_ci = peepholes, *w_cf = peepholes + H, *w_co = peepholes + 2 * H;
  for (int64_t b = 0; b < B; ++b) {
    const real *a = acts + b * 4 * H;
    real *d_a = d_gates + b * 4 * H;
    const real *c_prev_b = c_prev + b * H, *c_b = c + b * H, *dh_b = dh + b * H;
    real *dc_b = dc + b * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      real i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
      real tanh_c = tanh_(c_b[j]);
      real d_o = dh_b[j] * tanh_c * o * (1 - o);                   /* h = o tanh(c) */
      real d_c = dc_b[j] + dh_b[j] * o * (1 - tanh_c * tanh_c) + d_o * w_co[j];
      real d_i = d_c * g * i * (1 - i);                             /* c = f c_prev + i g */
      real d_f = d_c * c_prev_b[j] * f * (1 - f);
      real d_g = d_c * i * (1 - g * g);
      d_a[j] = d_i, d_a[H + j] = d_f, d_a[2 * H + j] = d_g, d_a[3 * H + j] = d_o;
      dc_b[j] = d_c * f + d_i * w_ci[j] + d_f * w_cf[j];           /* dL/dc_prev */
    }
  }
}
