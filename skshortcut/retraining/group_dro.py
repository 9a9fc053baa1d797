"""``GroupDRORetrainer``: online group DRO, on the last layer.

Sagawa, Koh, Hashimoto and Liang, *Distributionally Robust Neural Networks for
Group Shifts: On the Importance of Regularization for Worst-Case
Generalization* (ICLR 2020).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval

from .._torch import _seed_from
from ._last_layer import LastLayerRetrainer

__all__ = ["GroupDRORetrainer", "group_dro_update"]


def group_dro_update(q, group_losses, present, *, eta, adjustment=None):
    """One step of the online group DRO weights (Sagawa et al., Algorithm 1).

    .. math:: q_g \\leftarrow \\frac{q_g \\exp(\\eta (\\ell_g + C / \\sqrt{n_g}))}{\\sum_{g'} q_{g'} \\exp(\\eta (\\ell_{g'} + C / \\sqrt{n_{g'}}))}

    Groups absent from the minibatch keep their weight before normalisation.

    Parameters
    ----------
    q : tensor of shape (n_groups,)
        Current weights, on the simplex.
    group_losses : tensor of shape (n_groups,)
        Mean loss of each group in the minibatch (0 where absent).
    present : tensor of bool, shape (n_groups,)
        Which groups the minibatch holds.
    eta : float
        Step size of the weights.
    adjustment : tensor of shape (n_groups,), optional
        The generalisation adjustment ``C / sqrt(n_g)``.

    Returns
    -------
    tensor of shape (n_groups,)

    Examples
    --------
    >>> import torch
    >>> from skshortcut.retraining.group_dro import group_dro_update
    >>> q = group_dro_update(torch.full((2,), 0.5), torch.tensor([1.0, 0.0]), torch.tensor([True, True]), eta=1.0)
    >>> round(float(q.sum()), 6), bool(q[0] > q[1])
    (1.0, True)
    """
    step = group_losses if adjustment is None else group_losses + adjustment
    # in log space: the exponentials of large losses would overflow
    logq = torch.log(q) + eta * torch.where(present, step, torch.zeros_like(step))
    return torch.softmax(logq, dim=0)


class GroupDRORetrainer(LastLayerRetrainer):
    """Group DRO on the last layer: a head trained for the worst group, with group labels.

    Online group DRO (Sagawa et al., ICLR 2020, Algorithm 1) on the base
    model's features. The head ``theta = (W, b)`` starts at the base head and
    minimises the worst-group risk ``max_g E_g[loss]`` through its
    Lagrangian: for each minibatch, with ``loss_g`` the mean cross-entropy of
    group ``g`` in it,

    .. math:: q_g \\leftarrow q_g \\exp\\big(\\eta\\,(\\mathrm{loss}_g + C/\\sqrt{n_g})\\big), \\quad q \\leftarrow q / \\textstyle\\sum_g q_g,
    .. math:: \\theta \\leftarrow \\theta - \\mathrm{lr} \\, \\nabla_\\theta \\textstyle\\sum_g q_g \\, \\mathrm{loss}_g

    (:func:`group_dro_update`; ``C`` is the generalisation adjustment of sec. 5,
    ``n_g`` the group's size). The parameter step is Adam with weight decay
    (the paper's strong L2 penalty is what makes group DRO generalise). The
    minibatch order is seeded by ``random_state``.

    Group DRO is defined by group labels. Without them (``groups=None`` and
    no GroupedData) it falls back to the classes as groups, with a warning,
    and records it in ``grouped_on_``: the head then minimises the worst-class
    risk, as :class:`~skshortcut.DFRRetrainer` falls back to class balancing.

    Parameters
    ----------
    estimator : torch model, scikit-learn classifier or None, default=None
        The base model, as for :class:`AFRRetrainer`; it gives the features
        (torch models) and the starting head (an unfitted scikit-learn
        classifier is cloned and fit on the fit data first).
    eta : float > 0, default=0.01
        Step size of the group weights (the paper's ``eta_q``).
    generalization_adjustment : float >= 0, default=0
        ``C`` of the adjustment ``C / sqrt(n_g)``.
    lr : float > 0, default=1e-2
        Adam learning rate.
    weight_decay : float >= 0, default=1e-4
    max_epochs : int, default=100
    head : str, optional
    batch_size : int, default=128
        Samples per optimisation step, and per batch when embedding images (the
        meaning ``batch_size`` has in every estimator of the package).
    device : {"auto", "cpu", "cuda", ...}, default="auto"
        Where images are embedded (the head trains on the CPU).
    random_state : int, RandomState or None, default=None
    verbose : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (n_classes, n_features)
    intercept_ : ndarray of shape (n_classes,)
    groups_ : ndarray of shape (n_groups,)
        The group labels, sorted (the classes when ``grouped_on_`` is ``"classes"``).
    grouped_on_ : {"groups", "classes"}
        What the worst case was taken over: the given groups, or the
        classes when no groups were given.
    n_iter_ : int
        Epochs run (``max_epochs``), as for scikit-learn's stochastic solvers.
    estimator_ : scikit-learn classifier or None
        The scikit-learn base classifier used (the fitted clone of an
        unfitted ``estimator``); None for a torch model or ``estimator=None``.
    q_ : ndarray of shape (n_groups,)
        Final group weights.
    q_history_ : ndarray of shape (max_epochs, n_groups)
        Group weights at the end of each epoch.
    group_loss_ : ndarray of shape (n_groups,)
        Per-group mean loss of the final head on the fit data.
    init_coef_, init_intercept_ : ndarray
    n_features_in_ : int
    base_model_ : BaseModel or None

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut.retraining import GroupDRORetrainer
    >>> rng = np.random.RandomState(0)
    >>> y = rng.randint(0, 2, 600); s = np.where(rng.rand(600) < 0.9, y, 1 - y)
    >>> Z = np.c_[y + rng.normal(0, 0.6, 600), 3 * s + rng.normal(0, 0.3, 600)]
    >>> gdro = GroupDRORetrainer(max_epochs=20, lr=0.05, random_state=0).fit(Z, y, groups=2 * y + s)
    >>> round(float(gdro.q_.sum()), 6), gdro.q_.shape, gdro.grouped_on_
    (1.0, (4,), 'groups')
    """

    _parameter_constraints: dict = {
        "estimator": "no_validation",
        "eta": [Interval(numbers.Real, 0, None, closed="neither")],
        "generalization_adjustment": [Interval(numbers.Real, 0, None, closed="left")],
        "lr": [Interval(numbers.Real, 0, None, closed="neither")],
        "weight_decay": [Interval(numbers.Real, 0, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "head": [None, str],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": "no_validation",
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        estimator=None,
        *,
        eta=0.01,
        generalization_adjustment=0.0,
        lr=1e-2,
        weight_decay=1e-4,
        max_epochs=100,
        head=None,
        batch_size=128,
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.estimator = estimator
        self.eta = eta
        self.generalization_adjustment = generalization_adjustment
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.head = head
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None):
        """Train the head by online group DRO.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), images, Dataset or GroupedData
        y : array-like of shape (n_samples,)
        groups : array-like of shape (n_samples,), optional
            Group of each sample (or carried by a GroupedData ``X``). Without
            groups the classes are the groups, with a warning.

        Returns
        -------
        self
        """
        Z, y_idx, groups, _ = self._fit_inputs(X, y, groups)
        if groups is None:
            warnings.warn(
                "No groups given: GroupDRORetrainer takes the classes as groups (worst-class DRO). Pass `groups=` "
                "or a GroupedData (for example the pseudo-groups of ExMapGrouper) for group DRO; without groups, "
                "AFRRetrainer or JTTRetrainer target the hidden groups.",
                UserWarning,
                stacklevel=3,
            )
            groups = self.classes_[y_idx]
            self.grouped_on_ = "classes"
        else:
            self.grouped_on_ = "groups"
        self.groups_, g_idx = np.unique(groups, return_inverse=True)
        n_groups = len(self.groups_)
        counts = np.bincount(g_idx, minlength=n_groups)
        Zt = torch.as_tensor(Z, dtype=torch.float32)
        yt = torch.as_tensor(y_idx, dtype=torch.long)
        gt = torch.as_tensor(g_idx, dtype=torch.long)
        # plain tensors rather than nn.Linear: its initialisation would draw from the caller's torch RNG
        W = torch.tensor(self.init_coef_, dtype=torch.float32, requires_grad=True)
        b = torch.tensor(self.init_intercept_, dtype=torch.float32, requires_grad=True)

        def head(z):
            return z @ W.T + b

        opt = torch.optim.Adam([W, b], lr=self.lr, weight_decay=self.weight_decay)
        adjustment = torch.as_tensor(self.generalization_adjustment / np.sqrt(counts), dtype=torch.float32)
        q = torch.full((n_groups,), 1.0 / n_groups)
        gen = torch.Generator()
        seed = _seed_from(self.random_state)
        gen.manual_seed(seed if seed is not None else int(np.random.randint(0, 2**31 - 1)))
        history = []
        n = len(y_idx)
        for _ in range(self.max_epochs):
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, self.batch_size):
                idx = order[start : start + self.batch_size]
                losses = torch.nn.functional.cross_entropy(head(Zt[idx]), yt[idx], reduction="none")
                gb = gt[idx]
                sums = torch.zeros(n_groups).index_add(0, gb, losses)
                nb = torch.bincount(gb, minlength=n_groups).float()
                group_losses = sums / nb.clamp(min=1)
                q = group_dro_update(q, group_losses.detach(), nb > 0, eta=self.eta, adjustment=adjustment)
                opt.zero_grad()
                (q @ group_losses).backward()
                opt.step()
            history.append(q.numpy().copy())
        with torch.no_grad():
            losses = torch.nn.functional.cross_entropy(head(Zt), yt, reduction="none")
            self.group_loss_ = (torch.zeros(n_groups).index_add(0, gt, losses) / torch.as_tensor(counts)).numpy()
        self.q_ = q.numpy().copy()
        self.q_history_ = np.asarray(history)
        self.n_iter_ = len(history)
        self.coef_ = W.detach().double().numpy().copy()
        self.intercept_ = b.detach().double().numpy().copy()
        return self
