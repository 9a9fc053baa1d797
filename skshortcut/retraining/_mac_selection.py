"""Mask-and-Combine's model selection: the epoch with the best validation worst-group accuracy.

HosseiniNoohdani et al., *Mitigating Spurious Correlation in Images by
Intervention*, section 4.2 and appendix B: "the results of the model with the
highest worst group accuracy on the validation set" are kept. The estimator
hands skorch the validation embeddings as its validation set (``f`` is
frozen, so they are computed once); skorch's own callbacks do the rest.
"""

from __future__ import annotations

import numpy as np
from skorch.callbacks import EarlyStopping, EpochScoring

from ..base_model import predicted_index
from ..metrics import worst_group_accuracy

__all__ = ["selection_callbacks"]


# ``X`` holds the validation embeddings; ``net.forward`` returns the logits skorch cached
# in its validation pass (EpochScoring's ``use_caching``), so scoring runs nothing again.
def _valid_accuracy(net, X, y):
    return float(np.mean(predicted_index(net.forward(X)) == np.asarray(y)))


def _valid_worst_group_accuracy(net, X, y):
    return float(worst_group_accuracy(np.asarray(y), predicted_index(net.forward(X)), groups=net.valid_cache_[2]))


def selection_callbacks():
    """skorch callbacks scoring each epoch on the validation set and keeping the best head.

    ``valid_acc`` and ``valid_wga`` (with skorch's ``valid_wga_best``) columns
    of the history; the net must hold ``valid_cache_ = (Z_val, y_val,
    groups_val)`` while it trains.

    Returns
    -------
    list of (name, callback)

    Examples
    --------
    >>> from skshortcut.retraining._mac_selection import selection_callbacks
    >>> [name for name, _ in selection_callbacks()]
    ['valid_acc', 'valid_wga', 'worst_group_selection']
    """
    return [
        ("valid_acc", EpochScoring(_valid_accuracy, name="valid_acc", lower_is_better=False)),
        ("valid_wga", EpochScoring(_valid_worst_group_accuracy, name="valid_wga", lower_is_better=False)),
        # Keeps the head of the epoch with the best validation worst-group accuracy (the first of
        # equal ones). skorch's Checkpoint(load_best=True) would do it through files in a folder:
        # every fit of a grid search would write there, and fits running in parallel would share
        # it. EarlyStopping(load_best=True) keeps the best weights in memory; with infinite
        # patience it never stops training.
        (
            "worst_group_selection",
            EarlyStopping(
                monitor="valid_wga", lower_is_better=False, patience=np.inf, threshold=0.0,
                threshold_mode="abs", load_best=True,
            ),
        ),
    ]
