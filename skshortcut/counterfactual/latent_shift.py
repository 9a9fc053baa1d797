"""Latent Shift counterfactuals, searched for a whole batch of images at once.

Cohen et al., *Identifying Spurious Correlations using Counterfactual
Alignment* (2024), section 3, after *Gifsplanation via Latent Shift* (Cohen
et al., MIDL 2021): an image is encoded, ``z = E(x)``, and moved against the
gradient of a base classifier's output through the decoder,

.. math::

    z_\\lambda = z - \\lambda \\frac{\\partial f_b(D(z))}{\\partial z} \\quad (1)
    \\qquad x'_\\lambda = D(z_\\lambda) \\quad (2)

with ``lambda`` grown step by step until the base prediction has dropped by
``target_drop`` (0.6 in the paper), starts to rise, falls below
``min_output``, the image has changed too much, or the step budget is spent.
Here every image of a batch keeps its own ``lambda`` and its own stop flag, so
a batch is searched with one decoder and classifier call per step.
"""

from __future__ import annotations

import contextlib
from numbers import Integral, Real

import numpy as np
import torch
from sklearn import get_config
from sklearn.utils import Bunch
from sklearn.utils._param_validation import Interval, StrOptions, validate_parameter_constraints

from .._skorch import DeviceConstraint
from .._torch import is_dataset, iter_batches, n_samples, resolve_device, restore_module_state
from .adapters import (
    OUTPUTS,
    ClassifierOutput,
    as_autoencoder,
    as_classifier_output,
    check_counterfactual_images,
    check_finite_batch,
)

__all__ = ["LatentShift", "ClassifierOutput", "as_classifier_output", "as_autoencoder", "relative_change", "STOP_REASONS", "stop_summary"]

#: Why the lambda search of an image stopped (``stop_reason`` of a result).
STOP_REASONS = (
    "target_drop",  # the base prediction dropped by target_drop (the paper's goal)
    "min_output",  # the base prediction fell below min_output
    "rise",  # the base prediction started to rise
    "image_change",  # the image changed by more than max_image_change (L1)
    "max_steps",  # the step budget ran out
    "zero_gradient",  # the base output does not depend on the latent code
)
_CODE = {name: i for i, name in enumerate(STOP_REASONS)}

#: The stop reasons that are a limit of the search, and the parameter that sets each.
_LIMITS = {"image_change": "max_image_change", "max_steps": "max_steps", "min_output": "min_output"}


def stop_summary(stop_reasons, limits=None) -> str:
    """Say why the searches stopped, naming each limit that stopped some and its parameter.

    Parameters
    ----------
    stop_reasons : array-like of str
        The ``stop_reason`` of each search (see :data:`STOP_REASONS`).
    limits : dict, optional
        The values of ``max_image_change``, ``max_steps`` and ``min_output``, quoted in the text.

    Returns
    -------
    str

    Examples
    --------
    >>> from skshortcut.counterfactual.latent_shift import stop_summary
    >>> print(stop_summary(["image_change"] * 3 + ["rise"], {"max_image_change": 0.05}))
    3 of 4 searches stopped on the image-change limit (max_image_change=0.05): raise it, or set it to None for images where the object moves (digits on black); 1 stopped because the base prediction rose again.
    """
    reasons = np.asarray(stop_reasons, dtype=object)
    n = len(reasons)
    limits = dict(limits or {})
    parts = []
    for reason, param in _LIMITS.items():
        k = int(np.sum(reasons == reason))
        if not k:
            continue
        value = f"{param}={limits[param]!r}" if param in limits else param
        advice = {
            "image_change": "raise it, or set it to None for images where the object moves (digits on black)",
            "max_steps": "raise it, or check that the autoencoder can redraw the class",
            "min_output": "the base prediction fell below it before dropping by the threshold",
        }[reason]
        label = {"image_change": "image-change limit", "max_steps": "step budget", "min_output": "output floor"}[reason]
        parts.append(f"{k} of {n} searches stopped on the {label} ({value}): {advice}")
    others = {
        "rise": "because the base prediction rose again",
        "zero_gradient": "because the base output does not depend on the latent code",
        "target_drop": "after reaching the target drop",
    }
    for reason, why in others.items():
        k = int(np.sum(reasons == reason))
        if k:
            parts.append(f"{k} stopped {why}")
    if not parts:
        return "Check the autoencoder."
    return "; ".join(parts) + "."
_AUTO_MOVE = 0.05  # "auto" first step: at most 5 % of the latent code's norm


# --------------------------------------------------------------------------- relative change
def relative_change(downstream_change, base_change):
    """Relative change of Eq. 3: ``(f_i(x_lambda) - f_i(x_0)) / (f_b(x_lambda) - f_b(x_0))``.

    Both changes are taken in the same direction, so the sign of the ratio is
    the direction of the downstream change relative to the base change:
    positive when the downstream classifier falls with the base one. Where the
    base did not change the result is NaN.

    Parameters
    ----------
    downstream_change : array-like of shape (n,) or (n, k)
        ``f_i(x_0) - f_i(x_lambda)`` for each sample (and classifier).
    base_change : array-like of shape (n,)
        ``f_b(x_0) - f_b(x_lambda)``.

    Returns
    -------
    ndarray of the shape of ``downstream_change``

    Examples
    --------
    >>> from skshortcut.counterfactual import relative_change
    >>> relative_change([0.3, -0.6, 0.1], [0.6, 0.6, 0.0]).tolist()
    [0.5, -1.0, nan]
    """
    d = np.asarray(downstream_change, dtype=np.float64)
    b = np.asarray(base_change, dtype=np.float64)
    if d.shape[0] != b.shape[0]:
        raise ValueError(f"`downstream_change` has {d.shape[0]} samples but `base_change` has {b.shape[0]}.")
    b = b.reshape((-1,) + (1,) * (d.ndim - 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b != 0, d / np.where(b != 0, b, 1.0), np.nan)


# --------------------------------------------------------------------------- search
#: scikit-learn constraints of the lambda search's parameters, shared by every
#: estimator that runs a search (the alignment scorer, the rectifier).
SEARCH_CONSTRAINTS = {
    "outputs": [StrOptions(set(OUTPUTS))],
    "target_drop": [Interval(Real, 0, None, closed="neither")],
    "min_output": [Interval(Real, None, None, closed="neither")],
    "max_image_change": [Interval(Real, 0, None, closed="neither"), None],
    "step_size": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
    "growth": [Interval(Real, 0, None, closed="left")],
    "max_steps": [Interval(Integral, 1, None, closed="left")],
    "n_path": [Interval(Integral, 2, None, closed="left")],
    "fd_epsilon": [Interval(Real, 0, None, closed="neither")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "device": [DeviceConstraint()],
    "verbose": ["verbose"],
}


def _named_specs(downstream):
    if downstream is None:
        return {}
    if not isinstance(downstream, dict):
        raise TypeError(f"`downstream` must be a dict {{name: (classifier, target)}}; got {type(downstream).__name__}.")
    for key in downstream:
        if not isinstance(key, str):
            raise TypeError(f"`downstream` names must be strings; got {key!r}.")
    return dict(downstream)


class LatentShift:
    """Latent Shift counterfactuals of a base classifier, with the outputs of other classifiers along the path.

    Implements Eqs. 1-2 of Cohen et al., *Identifying Spurious Correlations
    using Counterfactual Alignment* (2024) and the lambda search of the
    authors' code: ``lambda`` grows step by step (each step
    ``lambda <- (1 + growth) * lambda + step``) until the base prediction
    ``f_b`` has dropped by ``target_drop`` below its value on the
    reconstruction, starts to rise, falls below ``min_output``, the image has
    changed by more than ``max_image_change`` of its L1 mass, or ``max_steps``
    steps are spent. When the stop is a rise or too large a change, the step
    that caused it is taken back, so the counterfactual is the last image on
    the path that lowered the prediction within the limits (the authors' loop
    keeps that last step; the paper's wording, "until the prediction begins
    to increase", reads as taking it back). The search runs on a whole batch at
    once: each image keeps its own ``lambda`` and stops on its own; only
    images still searching are decoded at each step.

    The gradient ``d f_b(D(z)) / dz`` is not normalised (as in the paper). For
    a base classifier known only through ``predict_proba`` it is estimated by
    central finite differences in the latent space (``2 * latent_dim``
    forward passes per image).

    Parameters
    ----------
    autoencoder : object with ``encode``/``decode``, pair ``(encoder, decoder)`` or fitted :class:`Autoencoder`
        Trained independently of the classifiers, on the same image domain.
    base : tuple ``(classifier, target)``
        The classifier whose output the counterfactuals lower, and the class
        whose probability is lowered (see :func:`as_classifier_output`).
    downstream : dict ``{name: (classifier, target)}``, optional
        Classifiers evaluated on the same counterfactuals.
    base_name : str, default="base"
        Name of the base classifier in the results.
    outputs : {"logits", "sigmoid", "probabilities"}, default="logits"
        How raw modules' outputs become probabilities (see :func:`as_classifier_output`).
    target_drop : float, default=0.6
        Stop when ``f_b`` has dropped by this much (the paper's 0.6).
    min_output : float, default=0.05
        Stop when ``f_b`` falls below this.
    max_image_change : float or None, default=0.05
        Stop when ``sum|x_lambda - x_0| > max_image_change * sum|x_0|`` (the
        authors' 5 %). Images that are mostly background (digits on black)
        change by far more than 5 % of their L1 mass when a stroke moves; raise
        it (for example to 1.0) or set ``None`` to disable this stop there.
    step_size : float or "auto", default="auto"
        First step of ``lambda``. ``"auto"``: per image, the step a linear model
        of ``f_b`` predicts to lower it by ``target_drop / 20``
        (``target_drop / (20 * ||grad||^2)``), which makes the search independent
        of the scale of the latent space; capped so that the first step moves
        the code by at most 5 % of its norm (a saturated classifier's tiny
        gradient would otherwise make the linear step huge). A float gives every image the same
        steps (the authors use 10 with their VQ-GAN).
    growth : float, default=0.1
        Relative growth of ``lambda`` per step besides ``step_size`` (the
        authors' ``lambda // 10``).
    max_steps : int, default=50
        Step budget of the search.
    n_path : int, default=2
        Points of the path ``lambda = linspace(0, lambda*, n_path)`` on which
        every classifier is evaluated (2: the reconstruction and the
        counterfactual, all Eq. 3 needs; more for plots).
    fd_epsilon : float, default=1e-2
        Finite-difference step for non-differentiable base classifiers,
        relative to the root-mean-square of each latent code.
    batch_size : int, default=64
        Images searched together. ``1`` searches one image at a time.
    device : {"auto", "cpu", "cuda", ...}, default="auto"
    verbose : int, default=0
        ``>= 1`` shows a progress bar over batches.

    Examples
    --------
    >>> import torch
    >>> from skshortcut.counterfactual import LatentShift
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> enc, dec = torch.nn.Linear(4, 2), torch.nn.Linear(2, 4)
    >>> clf = torch.nn.Linear(4, 2)
    >>> ls = LatentShift((enc, dec), (clf, 1), downstream={"other": (clf, 0)}, max_image_change=None,
    ...                  device="cpu")
    >>> out = ls.generate(torch.rand(5, 4))
    >>> out.counterfactuals.shape, out.relative_changes.shape
    ((5, 4), (5, 1))
    """

    def __init__(
        self,
        autoencoder,
        base,
        *,
        downstream=None,
        base_name="base",
        outputs="logits",
        target_drop=0.6,
        min_output=0.05,
        max_image_change=0.05,
        step_size="auto",
        growth=0.1,
        max_steps=50,
        n_path=2,
        fd_epsilon=1e-2,
        batch_size=64,
        device="auto",
        verbose=0,
    ):
        self.autoencoder = autoencoder
        self.base = base
        self.downstream = downstream
        self.base_name = base_name
        self.outputs = outputs
        self.target_drop = target_drop
        self.min_output = min_output
        self.max_image_change = max_image_change
        self.step_size = step_size
        self.growth = growth
        self.max_steps = max_steps
        self.n_path = n_path
        self.fd_epsilon = fd_epsilon
        self.batch_size = batch_size
        self.device = device
        self.verbose = verbose

    #: scikit-learn style constraints, checked by :meth:`generate` (LatentShift
    #: is a plain object, not an estimator: ``validate_parameter_constraints`` is
    #: called on its attributes directly).
    _parameter_constraints = {
        **SEARCH_CONSTRAINTS,
        "autoencoder": "no_validation",  # resolved by as_autoencoder, with its own messages
        "base": [tuple, list],
        "downstream": [dict, None],
        "base_name": [str],
    }

    def _validate(self):
        if not get_config().get("skip_parameter_validation"):
            validate_parameter_constraints(
                self._parameter_constraints,
                {name: getattr(self, name) for name in self._parameter_constraints},
                caller_name=type(self).__name__,
            )
        names = _named_specs(self.downstream)
        if self.base_name in names:
            raise ValueError(f"`base_name` {self.base_name!r} is also a `downstream` name; names must be unique.")
        return names

    def generate(self, X, *, return_images=True, return_path_images=False):
        """Counterfactuals of the images X and every classifier's output along their paths.

        Parameters
        ----------
        X : ndarray or tensor of shape (n, c, h, w), or torch Dataset
            Images in [0, 1] (any shape the autoencoder takes).
        return_images : bool, default=True
            Return the reconstructions and counterfactual images.
        return_path_images : bool, default=False
            Also return every image of the path (``n_path`` per sample).

        Returns
        -------
        result : :class:`~sklearn.utils.Bunch`
            ``counterfactuals`` ``(n, c, h, w)``: ``D(z_lambda*)``;
            ``reconstructions`` ``(n, c, h, w)``: ``D(z_0)``;
            ``lambdas`` ``(n,)``: the lambda found for each image;
            ``n_steps`` ``(n,)`` and ``stop_reason`` ``(n,)`` (see :data:`STOP_REASONS`);
            ``path_lambdas`` ``(n, n_path)``; ``path_outputs``:
            ``{name: (n, n_path)}`` for the base and every downstream
            classifier; ``path_images`` ``(n, n_path, c, h, w)`` if asked;
            ``base_change`` ``(n,)``: ``f_b(x_0) - f_b(x_lambda*)``;
            ``relative_changes`` ``(n, k)``: Eq. 3 for each downstream
            classifier, in the order of ``downstream_names``;
            ``base_name``, ``downstream_names``.
        """
        names = self._validate()
        dev = resolve_device(self.device)
        coder = as_autoencoder(self.autoencoder, device=dev)
        base = as_classifier_output(self.base, outputs=self.outputs, device=dev, name="base")
        downs = {k: as_classifier_output(v, outputs=self.outputs, device=dev, name=f"downstream[{k!r}]") for k, v in names.items()}
        n = n_samples(X)
        if n == 0:
            raise ValueError("`X` is empty; at least one image is needed.")
        X = check_counterfactual_images(X)
        modules = list(coder.modules) + list(base.modules) + [m for d in downs.values() for m in d.modules]
        batches = iter_batches(X, self.batch_size, device=dev)
        if self.verbose:
            from tqdm.auto import tqdm

            batches = tqdm(batches, total=-(-n // self.batch_size), desc="latent shift", leave=False)
        parts = []
        with contextlib.ExitStack() as stack:
            for m in {id(m): m for m in modules}.values():
                stack.enter_context(restore_module_state(m))
                m.eval()
            for xb in batches:
                if is_dataset(X):  # arrays were checked whole above
                    check_finite_batch(xb)
                parts.append(self._batch(xb, coder, base, downs, return_images, return_path_images))
        return self._collect(parts, list(names), return_images, return_path_images)

    # ------------------------------------------------------------------ internals
    def _base_gradient(self, coder, base, z0):
        """``f_b(D(z0))``, ``D(z0)`` and ``d f_b(D(z)) / dz`` at ``z0``."""
        if base.differentiable:
            z = z0.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                x0 = coder.decode(z)
                p0 = base(x0)
                grad = None
                if p0.requires_grad:
                    (grad,) = torch.autograd.grad(p0.sum(), z, allow_unused=True)
            grad = torch.zeros_like(z) if grad is None else grad.detach()
            return p0.detach(), x0.detach(), grad
        with torch.no_grad():
            x0 = coder.decode(z0)
            p0 = base(x0)
            n = z0.shape[0]
            flat = z0.reshape(n, -1)
            d = flat.shape[1]
            scale = flat.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-3) * self.fd_epsilon  # (n, 1)
            eye = torch.eye(d, device=z0.device, dtype=z0.dtype)
            shift = (eye[None] * scale[:, :, None]).reshape(n * d, d)
            zz = flat.repeat_interleave(d, dim=0)
            grad = torch.empty_like(flat)
            chunk = max(1, self.batch_size) * 4
            ups, downs = [], []
            for start in range(0, n * d, chunk):
                sl = slice(start, start + chunk)
                ups.append(base(coder.decode((zz[sl] + shift[sl]).reshape(-1, *z0.shape[1:]))))
                downs.append(base(coder.decode((zz[sl] - shift[sl]).reshape(-1, *z0.shape[1:]))))
            grad = ((torch.cat(ups) - torch.cat(downs)).reshape(n, d) / (2 * scale)).reshape(z0.shape)
        return p0, x0, grad

    def _search(self, coder, base, z0, x0, p0, grad):
        n = z0.shape[0]
        dev = z0.device
        gnorm2 = grad.flatten(1).pow(2).sum(1)
        if isinstance(self.step_size, str):
            # a linear model's step for target_drop / 20, at most _AUTO_MOVE of the code's norm in latent space
            linear = (self.target_drop / 20.0) / gnorm2.clamp_min(1e-30)
            capped = _AUTO_MOVE * z0.flatten(1).norm(dim=1) / gnorm2.clamp_min(1e-30).sqrt()
            step = torch.minimum(linear, capped)
        else:
            step = torch.full((n,), float(self.step_size), device=dev)
        lam = torch.zeros(n, device=dev)
        last = p0.clone()
        steps = torch.zeros(n, dtype=torch.long, device=dev)
        reason = torch.full((n,), _CODE["max_steps"], dtype=torch.long, device=dev)
        active = gnorm2 > 0
        reason[~active] = _CODE["zero_gradient"]
        mass = x0.flatten(1).abs().sum(1)
        bcast = (-1,) + (1,) * (z0.ndim - 1)
        for _ in range(self.max_steps):
            idx = torch.nonzero(active).squeeze(1)
            if idx.numel() == 0:
                break
            new_lam = lam[idx] * (1.0 + self.growth) + step[idx]
            z = z0[idx] - new_lam.reshape(bcast) * grad[idx]
            x = coder.decode(z)
            p = base(x)
            old_lam = lam[idx]
            lam[idx] = new_lam
            steps[idx] += 1
            code = torch.full_like(idx, -1)
            if self.max_image_change is not None:
                change = (x - x0[idx]).flatten(1).abs().sum(1)
                code[change > self.max_image_change * mass[idx]] = _CODE["image_change"]
            code[p > last[idx]] = _CODE["rise"]
            code[p < self.min_output] = _CODE["min_output"]
            code[p0[idx] - p > self.target_drop] = _CODE["target_drop"]
            last[idx] = p
            stop = code >= 0
            reason[idx[stop]] = code[stop]
            active[idx[stop]] = False
            # a step that raised the prediction or changed the image too much is taken back
            back = (code == _CODE["rise"]) | (code == _CODE["image_change"])
            lam[idx[back]] = old_lam[back]
        return lam, steps, reason

    def _batch(self, xb, coder, base, downs, return_images, return_path_images):
        with torch.no_grad():
            z0 = coder.encode(xb)
        p0, x0, grad = self._base_gradient(coder, base, z0)
        with torch.no_grad():
            lam, steps, reason = self._search(coder, base, z0, x0, p0, grad)
            n = z0.shape[0]
            frac = torch.linspace(0.0, 1.0, self.n_path, device=z0.device)
            path_lam = lam[:, None] * frac[None, :]  # (n, n_path)
            zp = z0[:, None] - path_lam.reshape((n, self.n_path) + (1,) * (z0.ndim - 1)) * grad[:, None]
            xp = coder.decode(zp.reshape(n * self.n_path, *z0.shape[1:]))
            outs = {self.base_name: base(xp).reshape(n, self.n_path)}
            for name, f in downs.items():
                outs[name] = f(xp).reshape(n, self.n_path)
            xp = xp.reshape(n, self.n_path, *xp.shape[1:])
        part = {
            "lambdas": lam.cpu().numpy(),
            "n_steps": steps.cpu().numpy(),
            "stop_code": reason.cpu().numpy(),
            "path_lambdas": path_lam.cpu().numpy(),
            "path_outputs": {k: v.float().cpu().numpy() for k, v in outs.items()},
        }
        if return_images:
            part["reconstructions"] = xp[:, 0].float().cpu().numpy()
            part["counterfactuals"] = xp[:, -1].float().cpu().numpy()
        if return_path_images:
            part["path_images"] = xp.float().cpu().numpy()
        return part

    def _collect(self, parts, names, return_images, return_path_images):
        cat = lambda key: np.concatenate([p[key] for p in parts])  # noqa: E731
        path_outputs = {k: np.concatenate([p["path_outputs"][k] for p in parts]) for k in parts[0]["path_outputs"]}
        base_path = path_outputs[self.base_name]
        base_change = base_path[:, 0] - base_path[:, -1]
        if names:
            down_change = np.stack([path_outputs[k][:, 0] - path_outputs[k][:, -1] for k in names], axis=1)
        else:
            down_change = np.empty((len(base_change), 0))
        result = Bunch(
            lambdas=cat("lambdas"),
            n_steps=cat("n_steps"),
            stop_reason=np.asarray(STOP_REASONS, dtype=object)[cat("stop_code")],
            path_lambdas=cat("path_lambdas"),
            path_outputs=path_outputs,
            base_change=base_change,
            relative_changes=relative_change(down_change, base_change),
            base_name=self.base_name,
            downstream_names=list(names),
        )
        if return_images:
            result.reconstructions = cat("reconstructions")
            result.counterfactuals = cat("counterfactuals")
        if return_path_images:
            result.path_images = cat("path_images")
        return result

