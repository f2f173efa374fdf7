"""A restricted Boltzmann machine over a dense layer's kernel and bias, trained by
contrastive divergence (CD-k) or persistent contrastive divergence (PCD-k).

The parameters live in one flat, 64-byte-aligned float32 buffer ``flat``, laid out as
``[kernel (n_visible * n_hidden, row-major) | bias (n_hidden) | visible_bias (n_visible)]``,
with ``kernel``, ``bias`` and ``visible_bias`` views into it; ``grad`` has the same layout.
``gradients(v0)`` fills ``grad`` with the *negative* CD update, so any optimizer that
minimises (``opt.step(rbm.flat, rbm.grad)``) performs CD learning:

    grad_W = -(v0^T p(h|v0) - vk^T p(h|vk)) / n,   grad_b = -mean(p(h|v0) - p(h|vk)),
    grad_c = -mean(v0 - vk).

Sampling choices (Hinton, "A practical guide to training RBMs", 2010, sections 3 and 13.2):
- hidden states driven by the data, and every hidden state that continues a chain, are
  sampled: Bernoulli draws from the generator passed in;
- in CD, the last reconstruction ``vk`` is the visible units' probabilities (binary) or
  means (gaussian), not a sample: less sampling noise, faster learning. The visible states
  of the chain's earlier steps (k > 1) are samples, so the chain is a true Gibbs chain;
- a persistent chain (PCD, Tieleman 2008) is not a reconstruction of the data but a sample
  of the model, so its visible states are always sampled and ``vk`` is that sample: a
  chain that continued from probabilities would not have the model as its stationary
  distribution. The chain's hidden states persist between calls, one chain per row;
- gaussian visible units have unit variance: their mean is ``h W^T + c`` and a sample adds
  standard normal noise.

The reconstruction error returned is the mean over the batch and the visible units of
``(v0 - p(v|h0))^2``, where ``h0`` is the hidden sample of the data (the first
reconstruction's probabilities).

Speed: float32 throughout, BLAS products, buffers allocated once per batch size, random
numbers drawn as float32 into preallocated arrays. The weight gradient is one product
``[-v0 / n; vk]^T [p(h|v0); p(h|vk) / n]`` over the stacked positive and negative phases;
the bias gradients are two matrix-vector products over the same stacks.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from dlspec.engine.kernels import aligned

VISIBLE_KINDS = ("binary", "gaussian")
_CLIP = 1e-3  # init_visible_bias: data means clipped to [_CLIP, 1 - _CLIP] before the logit


class RBM:
    """Contrastive-divergence training of a dense layer's parameters (see the module).

    Args:
        kernel: float32 (n_visible, n_hidden), the dense layer's kernel (copied).
        bias: (n_hidden,), the dense layer's bias (copied).
        visible: "binary" (logistic visible units) or "gaussian" (unit variance).
        cd_k: Gibbs steps per update (>= 1).
        persistent: keep the chains between calls (PCD) instead of starting at the data.
        rng: every random draw comes from it, so training is reproducible bit for bit.
        visible_bias: (n_visible,) or None for zeros (copied).
    """

    def __init__(self, kernel: np.ndarray, bias: np.ndarray, *, visible: str = "binary",
                 cd_k: int = 1, persistent: bool = False, rng: np.random.Generator,
                 visible_bias: np.ndarray | None = None) -> None:
        kernel = np.asarray(kernel)
        if kernel.ndim != 2:
            raise ValueError(f"RBM: kernel must be 2-D (n_visible, n_hidden), got shape "
                             f"{kernel.shape}")
        nv, nh = kernel.shape
        if np.shape(bias) != (nh,):
            raise ValueError(f"RBM: bias must have shape ({nh},) for a kernel of shape "
                             f"{kernel.shape}, got {np.shape(bias)}")
        if visible_bias is not None and np.shape(visible_bias) != (nv,):
            raise ValueError(f"RBM: visible_bias must have shape ({nv},), got "
                             f"{np.shape(visible_bias)}")
        if visible not in VISIBLE_KINDS:
            raise ValueError(f"RBM: visible must be one of {VISIBLE_KINDS}, got {visible!r}")
        if not isinstance(cd_k, int | np.integer) or cd_k < 1:
            raise ValueError(f"RBM: cd_k must be a positive integer, got {cd_k!r}")
        self.n_visible, self.n_hidden = nv, nh
        self.visible, self.cd_k, self.persistent, self.rng = visible, int(cd_k), persistent, rng
        size = nv * nh + nh + nv
        self.flat, self.grad = aligned((size,)), aligned((size,))
        self.kernel, self.bias, self.visible_bias = self._views(self.flat)
        self._gk, self._gb, self._gc = self._views(self.grad)
        self.kernel[...] = kernel
        self.bias[...] = bias
        if visible_bias is not None:
            self.visible_bias[...] = visible_bias
        self._bufs: dict[int, SimpleNamespace] = {}
        self._chain: np.ndarray | None = None  # PCD: one hidden state per chain
        self._neg_b = np.empty(nh, np.float32)
        self._neg_c = np.empty(nv, np.float32)

    def _views(self, buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nv, nh = self.n_visible, self.n_hidden
        return buf[:nv * nh].reshape(nv, nh), buf[nv * nh:nv * nh + nh], buf[nv * nh + nh:]

    def init_visible_bias(self, v: np.ndarray) -> None:
        """Set the visible bias from the data ``v`` (n, n_visible): binary units get
        log(p / (1 - p)) of each unit's mean p, clipped to [1e-3, 1 - 1e-3] (Hinton's guide,
        section 8), so that the model starts out with the data's marginals; gaussian units
        get the mean itself."""
        v = self._check(v, "init_visible_bias")
        p = v.mean(axis=0, dtype=np.float64)
        if self.visible == "binary":
            p = np.clip(p, _CLIP, 1 - _CLIP)
            p = np.log(p / (1 - p))
        self.visible_bias[...] = p

    # -- the conditionals ---------------------------------------------------------------

    def _hidden_probs(self, v: np.ndarray, out: np.ndarray, scale: float = 1.0) -> None:
        """out = scale * sigmoid(v W + b), in place after one product."""
        np.dot(v, self.kernel, out=out)
        np.subtract(self._neg_b, out, out=out)   # -(vW + b)
        np.exp(out, out=out)
        out += np.float32(1)
        np.divide(np.float32(scale), out, out=out)

    def _visible_means(self, h: np.ndarray, out: np.ndarray) -> None:
        """out = p(v = 1 | h) (binary) or E[v | h] (gaussian)."""
        np.dot(h, self.kernel.T, out=out)
        if self.visible == "binary":
            np.subtract(self._neg_c, out, out=out)
            np.exp(out, out=out)
            out += np.float32(1)
            np.divide(np.float32(1), out, out=out)
        else:
            out += self.visible_bias

    def _sample_visible(self, mean: np.ndarray, noise: np.ndarray) -> None:
        """mean -> a sample of the visible units, in place."""
        if self.visible == "binary":
            self.rng.random(out=noise, dtype=np.float32)
            np.less(noise, mean, out=mean)
        else:
            self.rng.standard_normal(out=noise, dtype=np.float32)
            mean += noise

    def _sample_hidden(self, probs: np.ndarray, noise: np.ndarray, out: np.ndarray) -> None:
        self.rng.random(out=noise, dtype=np.float32)
        np.less(noise, probs, out=out)

    # -- training -----------------------------------------------------------------------

    def _buffers(self, n: int) -> SimpleNamespace:
        b = self._bufs.get(n)
        if b is None:
            nv, nh = self.n_visible, self.n_hidden
            b = SimpleNamespace(
                sv=aligned((2 * n, nv)),    # [-v0 / n; vk]
                sh=aligned((2 * n, nh)),    # [p(h|v0); p(h|vk) / n]
                h=aligned((n, nh)), rh=aligned((n, nh)), rv=aligned((n, nv)),
                pv=aligned((n, nv)),        # PCD: the first reconstruction
                wv=np.concatenate([np.full(n, 1, np.float32), np.full(n, 1 / n, np.float32)]),
                wh=np.concatenate([np.full(n, -1 / n, np.float32), np.full(n, 1, np.float32)]))
            self._bufs[n] = b
        return b

    def _chains(self, h0: np.ndarray) -> np.ndarray:
        """PCD: the first ``len(h0)`` chains' hidden states; chains are started from the
        data's hidden samples the first time a batch of that many rows is seen."""
        n = len(h0)
        old = self._chain
        if old is None or len(old) < n:
            chain = aligned((n, self.n_hidden))
            have = 0 if old is None else len(old)
            chain[:have] = old[:have] if old is not None else 0
            chain[have:] = h0[have:]
            self._chain = chain
        return self._chain[:n]

    def gradients(self, v0: np.ndarray) -> float:
        """Fill ``grad`` with the negative CD-k (or PCD-k) update for the batch ``v0``
        (float32, (n, n_visible)); returns the batch's mean squared reconstruction error."""
        v0 = self._check(v0, "gradients")
        n = len(v0)
        b = self._buffers(n)
        np.negative(self.bias, out=self._neg_b)
        np.negative(self.visible_bias, out=self._neg_c)
        top, bot = slice(0, n), slice(n, 2 * n)
        vk, phk = b.sv[bot], b.sh[bot]
        with np.errstate(over="ignore"):
            self._hidden_probs(v0, b.sh[top])
            np.multiply(v0, np.float32(-1 / n), out=b.sv[top])
            self._sample_hidden(b.sh[top], b.rh, b.h)
            if self.persistent:
                self._visible_means(b.h, b.pv)
                err = self._sq_error(v0, b.pv, b.rv)
                h = self._chains(b.h)
            else:
                h = b.h
            for step in range(self.cd_k):
                last = step == self.cd_k - 1
                self._visible_means(h, vk)
                if step == 0 and not self.persistent:
                    err = self._sq_error(v0, vk, b.rv)
                if self.persistent or not last:
                    self._sample_visible(vk, b.rv)
                if last and not self.persistent:
                    self._hidden_probs(vk, phk, scale=1 / n)
                else:
                    self._hidden_probs(vk, phk)
                    self._sample_hidden(phk, b.rh, h)
            if self.persistent:
                phk *= np.float32(1 / n)
        np.dot(b.sv.T, b.sh, out=self._gk)
        np.dot(b.wh, b.sh, out=self._gb)
        np.dot(b.wv, b.sv, out=self._gc)
        return err

    @staticmethod
    def _sq_error(v0: np.ndarray, recon: np.ndarray, tmp: np.ndarray) -> float:
        np.subtract(v0, recon, out=tmp)
        flat = tmp.reshape(-1)
        return float(np.dot(flat, flat)) / flat.size

    # -- evaluation ---------------------------------------------------------------------

    def reconstruct(self, v: np.ndarray) -> np.ndarray:
        """p(v | p(h | v)): the data through the hidden units' probabilities and back,
        deterministic (no sampling, the generator is not touched); a new array."""
        v = self._check(v, "reconstruct")
        h = np.empty((len(v), self.n_hidden), np.float32)
        out = np.empty_like(v)
        np.negative(self.bias, out=self._neg_b)
        np.negative(self.visible_bias, out=self._neg_c)
        with np.errstate(over="ignore"):
            self._hidden_probs(v, h)
            self._visible_means(h, out)
        return out

    def hidden_probs(self, v: np.ndarray) -> np.ndarray:
        """p(h = 1 | v) = sigmoid(v W + b), float32 (n, n_hidden): what the layer passes on
        to the next one in a deep belief net; a new array."""
        v = self._check(v, "hidden_probs")
        out = np.empty((len(v), self.n_hidden), np.float32)
        np.negative(self.bias, out=self._neg_b)
        with np.errstate(over="ignore"):
            self._hidden_probs(v, out)
        return out

    def free_energy(self, v: np.ndarray) -> np.ndarray:
        """F(v) per row, float32 (n,): -v.c - sum_j softplus(v W_j + b_j) for binary
        visible units, 0.5 |v - c|^2 - sum_j softplus(...) for gaussian ones."""
        v = self._check(v, "free_energy")
        x = v @ self.kernel
        x += self.bias
        hidden = np.logaddexp(np.float32(0), x).sum(axis=1)
        if self.visible == "binary":
            visible = -(v @ self.visible_bias)
        else:
            d = v - self.visible_bias
            visible = np.float32(0.5) * np.einsum("ij,ij->i", d, d)
        return (visible - hidden).astype(np.float32, copy=False)

    def _check(self, v: np.ndarray, who: str) -> np.ndarray:
        v = np.asarray(v, dtype=np.float32)
        if v.ndim != 2 or v.shape[1] != self.n_visible or len(v) == 0:
            raise ValueError(f"RBM.{who}: expected a float32 batch of shape (n, "
                             f"{self.n_visible}) with n >= 1, got shape {v.shape}")
        return v
