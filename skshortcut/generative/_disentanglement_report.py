"""Linear probes across the feature split of a fitted disentangler: D3S's table 2.

Kattakinda, Levine and Feizi, *Invariant Learning via Diffusion Dreamed
Distribution Shifts*, section 6: a disentangler is good when a linear probe
reads the foreground from ``z_fg`` and the background from ``z_bg``, and
reads neither label from the other part.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from .._validation import check_same_length
from ._two_labels import label_columns

__all__ = ["disentanglement_report"]


def _default_probe():
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def disentanglement_report(disentangler, X, y, *, X_test=None, y_test=None, probe=None, test_size=0.5,
                           random_state=None):
    """D3S's table 2 for a fitted disentangler: what :meth:`WassersteinDisentangler.disentanglement_report` returns.

    ``disentangler`` is the fitted :class:`~skshortcut.WassersteinDisentangler`;
    the other parameters and the result are described on that method.

    Examples
    --------
    >>> import numpy as np
    >>> from skshortcut import WassersteinDisentangler
    >>> from skshortcut.generative._disentanglement_report import disentanglement_report
    >>> rng = np.random.RandomState(0)
    >>> X = rng.rand(40, 1, 4, 4).astype("float32")
    >>> y = np.stack([rng.randint(0, 2, 40), rng.randint(0, 2, 40)], axis=1)
    >>> wd = WassersteinDisentangler(n_background_features=4, max_epochs=1, random_state=0,
    ...                              extractor_params={"width": 4}).fit(X, y)
    >>> report = disentanglement_report(wd, X, y, random_state=0)
    >>> report.n_train, report.n_test, 0 <= report.fg_from_bg <= 1
    (20, 20, True)
    """
    from sklearn.model_selection import train_test_split

    check_is_fitted(disentangler)
    Y, known = label_columns(y)
    z = disentangler.transform(X, part="both")
    check_same_length(X=z, y=Y)
    if X_test is None:
        if y_test is not None:
            raise ValueError("`y_test` was given without `X_test`.")
        idx_train, idx_test = train_test_split(np.arange(len(Y)), test_size=test_size, random_state=random_state)
        train = z[idx_train], Y[idx_train], known[idx_train]
        test = z[idx_test], Y[idx_test], known[idx_test]
    else:
        train = z, Y, known
        Y_test, known_test = label_columns(y_test, name="y_test")
        test = disentangler.transform(X_test, part="both"), Y_test, known_test
        check_same_length(X_test=test[0], y_test=Y_test)
    probe = _default_probe() if probe is None else probe
    k = disentangler.n_foreground_features_
    parts = {"fg": slice(0, k), "bg": slice(k, None)}
    (z_tr, Y_tr, known_tr), (z_te, Y_te, known_te) = train, test
    out = Bunch(n_train=len(Y_tr), n_test=len(Y_te))
    for target, col in (("fg", 0), ("bg", 1)):
        rows_tr = known_tr if col == 1 else np.ones(len(Y_tr), bool)
        rows_te = known_te if col == 1 else np.ones(len(Y_te), bool)
        labels_tr = Y_tr[rows_tr, col].astype(str)
        labels_te = Y_te[rows_te, col].astype(str)
        values, counts = np.unique(labels_tr, return_counts=True)
        out[f"chance_{target}"] = float(np.mean(labels_te == values[counts.argmax()]))
        for source, sl in parts.items():
            model = clone(probe).fit(z_tr[rows_tr][:, sl], labels_tr)
            out[f"{target}_from_{source}"] = float(np.mean(model.predict(z_te[rows_te][:, sl]) == labels_te))
    return out
