"""The torch form of every op in dlspec's registry, on dlspec's own layouts.

Tensors keep the layouts the NumPy engine uses (images NHWC, conv kernels [KH, KW, C/groups,
O], recurrent weights in Keras' gate order), so a parameter has one shape and one name in
both engines and weights move between them without conversion. Each entry is
``(*tensors, **attrs) -> tensor``; autograd gives the gradients. ``train_only`` ops
(dropout, batch norm's training form) get the same inputs as in the graph: at inference
the module passes their first input through, as the exported model does. Token ids and
sequence lengths (an op's ``index_inputs``, ``token_lengths``' output) are int64 tensors,
used as indices and masks only: nothing differentiates through them. The masked recurrent
ops keep a padded step's states, as the NumPy engine's do.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

NCHW, NHWC = (0, 3, 1, 2), (0, 2, 3, 1)


def _conv2d(x, w, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1):
    t, left, b, r = (int(p) for p in pads)
    xc = F.pad(x.permute(NCHW), (left, r, t, b))
    y = F.conv2d(xc, w.permute(3, 2, 0, 1), stride=tuple(strides), dilation=tuple(dilations),
                 groups=int(groups))
    return y.permute(NHWC)


def _maxpool2d(x, kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0)):
    t, left, b, r = (int(p) for p in pads)
    xc = F.pad(x.permute(NCHW), (left, r, t, b), value=float("-inf"))
    return F.max_pool2d(xc, tuple(kernel), tuple(strides)).permute(NHWC)


def _avgpool2d(x, kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0), count_include_pad=False):
    t, left, b, r = (int(p) for p in pads)
    y = F.avg_pool2d(F.pad(x.permute(NCHW), (left, r, t, b)), tuple(kernel), tuple(strides))
    if any(pads) and not count_include_pad:  # divide by the window's real pixels
        ones = F.pad(x.new_ones((1, 1, x.shape[1], x.shape[2])), (left, r, t, b))
        y = y / F.avg_pool2d(ones, tuple(kernel), tuple(strides))
    return y.permute(NHWC)


def _batchnorm(x, gamma, beta, mean, var, epsilon=1e-5):
    scale = gamma / torch.sqrt(var + epsilon)
    return x * scale + (beta - mean * scale)


def _batch_axes(x) -> tuple[int, ...]:
    return tuple(range(x.dim() - 1))


def _batchnorm_train(a, x, gamma, beta, mean, var, epsilon=1e-5, momentum=0.99):
    xc = x - x.mean(dim=_batch_axes(x))
    return xc * torch.rsqrt((xc * xc).mean(dim=_batch_axes(x)) + epsilon) * gamma + beta


def batchnorm_update(a, x, gamma, beta, mean, var, epsilon=1e-5, momentum=0.99) -> dict:
    """The op's state rule (Keras' momentum, biased variance): {input index: new value}."""
    axes = _batch_axes(x)
    x = x.detach()
    return {4: mean * momentum + x.mean(dim=axes) * (1 - momentum),
            5: var * momentum + x.var(dim=axes, unbiased=False) * (1 - momentum)}


# ----------------------------------------------------------------------------- recurrent

RNN_ACTS: dict[str, Callable] = {
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
    "linear": lambda v: v, "leaky_relu": lambda v: F.leaky_relu(v, 0.2),
    "elu": lambda v: F.elu(v, 1.0), "softplus": F.softplus,
}


def _step_mask(x, lengths):
    """(T, N, 1) bool: step t of row n is real (t < lengths[n]); None without lengths."""
    if lengths is None:
        return None
    return (torch.arange(x.shape[1], device=x.device)[:, None] < lengths[None, :])[:, :, None]


def _keep(mask, k: int, new, old):
    """A padded step (mask False) keeps the state of the step before."""
    return new if mask is None else torch.where(mask[k], new, old)


def _seq(hs: list, return_sequences: bool, mask=None):
    if not return_sequences:
        return hs[-1]
    seq = torch.stack(hs, dim=1)   # a padded step outputs zeros
    return seq if mask is None else seq * mask.transpose(0, 1).to(seq.dtype)


def _lstm(x, w, u, b=None, *, units, return_sequences=False, activation="tanh",
          recurrent_activation="sigmoid", lengths=None):
    act, rec = RNN_ACTS[activation], RNN_ACTS[recurrent_activation]
    mask = _step_mask(x, lengths)
    proj = x @ w if b is None else x @ w + b
    h = c = x.new_zeros((x.shape[0], units))
    hs = []
    for k in range(x.shape[1]):
        i, f, g, o = (proj[:, k] + h @ u).split(units, dim=1)
        c_new = rec(f) * c + rec(i) * act(g)
        h = _keep(mask, k, rec(o) * act(c_new), h)
        c = _keep(mask, k, c_new, c)
        hs.append(h)
    return _seq(hs, return_sequences, mask)


def _gru(x, w, u, b=None, *, units, return_sequences=False, activation="tanh",
         recurrent_activation="sigmoid", lengths=None):
    act, rec = RNN_ACTS[activation], RNN_ACTS[recurrent_activation]
    mask = _step_mask(x, lengths)
    proj = x @ w if b is None else x @ w + b[0]
    h = x.new_zeros((x.shape[0], units))
    hs = []
    for k in range(x.shape[1]):
        rp = h @ u if b is None else h @ u + b[1]
        pz, pr, ph = proj[:, k].split(units, dim=1)
        rz, rr, rh = rp.split(units, dim=1)
        z, r = rec(pz + rz), rec(pr + rr)
        h = _keep(mask, k, z * h + (1 - z) * act(ph + r * rh), h)
        hs.append(h)
    return _seq(hs, return_sequences, mask)


def _rnn(x, w, u, b=None, *, units, return_sequences=False, activation="tanh",
         lengths=None):
    act = RNN_ACTS[activation]
    mask = _step_mask(x, lengths)
    proj = x @ w if b is None else x @ w + b
    h = x.new_zeros((x.shape[0], units))
    hs = []
    for k in range(x.shape[1]):
        h = _keep(mask, k, act(proj[:, k] + h @ u), h)
        hs.append(h)
    return _seq(hs, return_sequences, mask)


def _masked(cell: Callable) -> Callable:
    """The masked op of ``cell``: inputs x, lengths (N,) int64, then the cell's weights."""
    def masked(x, lengths, w, u, b=None, **attrs):
        return cell(x, w, u, b, lengths=lengths, **attrs)
    return masked


# ----------------------------------------------------------------------------- text

def _masked_mean(x, lengths):
    """The mean over each row's real steps (t < length); an empty row's mean is 0."""
    real = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
    weights = real.to(x.dtype) / lengths.clamp(min=1).to(x.dtype)[:, None]
    return torch.einsum("ntf,nt->nf", x, weights)


# ----------------------------------------------------------------------------- losses

def _bce(z, y):
    y = y.reshape(z.shape).to(z.dtype)
    return (torch.clamp(z, min=0) - z * y + torch.log1p(torch.exp(-z.abs()))).mean()


def _cce(z, y):
    k = z.shape[1]
    t = y.to(z.dtype) if y.dim() == 2 and y.shape[1] == k else \
        F.one_hot(y.reshape(-1).long(), k).to(z.dtype)
    return -(t * F.log_softmax(z, dim=1)).sum() / z.shape[0]


def _err(square: bool):
    def loss(z, y):
        d = z - y.reshape(z.shape).to(z.dtype)
        return (d * d).mean() if square else d.abs().mean()
    return loss


TORCH_OPS: dict[str, Callable] = {
    "matmul": torch.matmul,
    "add": torch.add,
    "mul": torch.mul,
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softplus": F.softplus,
    "leaky_relu": lambda x, alpha: F.leaky_relu(x, alpha),
    "elu": lambda x, alpha: F.elu(x, alpha),
    "softmax": lambda x, axis=-1: torch.softmax(x, dim=axis),
    "dropout": torch.mul,
    "flatten": lambda x: x.reshape(x.shape[0], -1),
    "reshape": lambda x, shape: x.reshape(x.shape[0], *shape),
    "concat": lambda *xs, axis=-1: torch.cat(xs, dim=axis),
    "conv2d": _conv2d,
    "maxpool2d": _maxpool2d,
    "avgpool2d": _avgpool2d,
    "global_avgpool": lambda x: x.mean(dim=(1, 2)),
    "batchnorm": _batchnorm,
    "batchnorm_train": _batchnorm_train,
    "lstm": _lstm, "lstm_nobias": _lstm,
    "gru": _gru, "gru_nobias": _gru,
    "rnn": _rnn, "rnn_nobias": _rnn,
    "lstm_masked": _masked(_lstm), "lstm_masked_nobias": _masked(_lstm),
    "gru_masked": _masked(_gru), "gru_masked_nobias": _masked(_gru),
    "rnn_masked": _masked(_rnn), "rnn_masked_nobias": _masked(_rnn),
    # token ids and lengths are int64 data: no gradient reaches them. The table's gradient
    # is autograd's scatter-add (a repeated id gets the sum of its rows).
    "embedding": lambda ids, table: F.embedding(ids, table),
    "token_lengths": lambda ids: (ids > 0).sum(dim=1),
    "masked_mean": _masked_mean,
    "bce_logits": _bce,
    "cce_logits": _cce,
    "mse": _err(True),
    "mae": _err(False),
    "stop_gradient": lambda x: x.detach(),
    "loss_sum": lambda *xs, weights: sum(w * x for w, x in zip(weights, xs, strict=True)),
}

# The state rule of each op with one (OpDef.update in the NumPy registry).
TORCH_UPDATES: dict[str, Callable] = {"batchnorm_train": batchnorm_update}
