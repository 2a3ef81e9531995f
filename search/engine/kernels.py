"""Compiled CPU kernels (numba): each optimizer's update as one loop over the flat buffer.

On the CPU, PyTorch runs an update rule as eight to eleven separate passes over the 100k
parameters, each with its own dispatch and OpenMP fork/join: about 290 us per step on 2 cores,
more than a matrix product (benchmarks/NOTES.md). One compiled loop reads and writes each value
once: about 70 us. Every scalar is float32 so that the loop stays in single precision, as
``torch.optim`` does; ``tests/test_train.py`` checks each kernel against ``torch.optim``.
The first call compiles (about a second); ``cache=True`` keeps the machine code on disk.
"""

from __future__ import annotations

import numba
import numpy as np

F32 = np.float32


def _jit(func):
    options = {"nogil": True, "error_model": "numpy"}
    try:
        return numba.njit(cache=True, **options)(func)
    except RuntimeError:  # no writable cache folder (a read-only install): compile per process
        return numba.njit(**options)(func)


@_jit
def adadelta(p, g, square_avg, acc_delta, lr, rho, eps, weight_decay):  # pragma: no cover
    one = F32(1.0)
    for i in range(p.shape[0]):
        gi = g[i] + weight_decay * p[i]
        s = rho * square_avg[i] + (one - rho) * gi * gi
        square_avg[i] = s
        delta = np.sqrt(acc_delta[i] + eps) / np.sqrt(s + eps) * gi
        acc_delta[i] = rho * acc_delta[i] + (one - rho) * delta * delta
        p[i] -= lr * delta


@_jit
def sgd(p, g, buf, lr, momentum, weight_decay, nesterov):  # pragma: no cover
    """Heavy-ball momentum, or Nesterov's (the step looks ahead along the new buffer)."""
    for i in range(p.shape[0]):
        gi = g[i] + weight_decay * p[i]
        b = momentum * buf[i] + gi
        buf[i] = b
        p[i] -= lr * (gi + momentum * b if nesterov else b)


@_jit
def adam(
    p, g, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, decay, bias1, bias2_sqrt
):  # pragma: no cover
    """Adam (``weight_decay`` added to the gradient) and AdamW (``decay`` = 1 - lr * wd)."""
    one = F32(1.0)
    step = lr / bias1
    for i in range(p.shape[0]):
        gi = g[i] + weight_decay * p[i]
        m = exp_avg[i] + (one - beta1) * (gi - exp_avg[i])  # torch's lerp_
        v = beta2 * exp_avg_sq[i] + (one - beta2) * gi * gi
        exp_avg[i] = m
        exp_avg_sq[i] = v
        p[i] = p[i] * decay - step * m / (np.sqrt(v) / bias2_sqrt + eps)


@_jit
def nll_forward_backward(z, y, dz, grad_bias, loss_out, smoothing):  # pragma: no cover
    """Mean NLL of log_softmax(z) against targets (1 - smoothing) one_hot(y) + smoothing / k;
    dz = (softmax(z) - target) / n, and its column sums (the last layer's bias gradient).
    Written into the given arrays. With smoothing 0 the arithmetic is the plain NLL's."""
    n, k = z.shape
    inv_n = F32(1.0) / F32(n)
    keep, spread = F32(1.0) - smoothing, smoothing / F32(k)
    total = F32(0.0)
    grad_bias[:] = F32(0.0)
    for i in range(n):
        top = z[i, 0]
        row_sum = z[i, 0]
        for j in range(1, k):
            top = max(top, z[i, j])
            row_sum += z[i, j]
        label_logit = z[i, y[i]]  # read before dz (which may be z itself) overwrites it
        norm = F32(0.0)
        for j in range(k):
            e = np.exp(z[i, j] - top)
            dz[i, j] = e
            norm += e
        log_norm = np.log(norm)
        total -= keep * (label_logit - top - log_norm) + spread * (
            row_sum - F32(k) * (top + log_norm)
        )
        for j in range(k):
            d = dz[i, j] / norm
            if j == y[i]:
                d -= keep
            d -= spread
            d *= inv_n
            dz[i, j] = d
            grad_bias[j] += d
    loss_out[0] = total * inv_n


@_jit
def activation_backward(g, out, grad_bias, kind, slope):  # pragma: no cover
    """g *= act'(.) from the activation's output, in place, and grad_bias = column sums of g.
    kind: 0 relu, 1 leaky relu (slope), 2 sigmoid, 3 tanh."""
    n, k = g.shape
    grad_bias[:] = F32(0.0)
    one = F32(1.0)
    for i in range(n):
        for j in range(k):
            o = out[i, j]
            if kind == 0:
                d = g[i, j] if o > 0 else F32(0.0)
            elif kind == 1:
                d = g[i, j] if o > 0 else g[i, j] * slope
            elif kind == 2:
                d = g[i, j] * o * (one - o)
            else:
                d = g[i, j] * (one - o * o)
            g[i, j] = d
            grad_bias[j] += d
