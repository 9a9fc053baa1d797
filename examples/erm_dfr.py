"""ERM learns a shortcut; DFR repairs it.

The digits' stroke colour agrees with the label (digit >= 5) for 95% of the
training and validation images, and for half of the test images. A small CNN
trained by ERM leans on the colour: accurate on the groups where colour and
label agree, poor where they disagree. Deep Feature Reweighting retrains only
its last layer on the validation split, balanced by (class, colour) group, and
raises the worst-group accuracy.

Run: ``python examples/erm_dfr.py``; the figure goes to the folder named by
``SKSHORTCUT_EXAMPLE_OUT`` (default: a temporary folder).
"""

import os
import tempfile

from skshortcut import DFRRetrainer, ERMClassifier, group_accuracies
from skshortcut.datasets import make_colored_digits
from skshortcut.plotting import plot_group_accuracies

data = make_colored_digits(4000, 2000, 2000, regime="default", random_state=0)
print(data.DESCR.splitlines()[0])

# 1. ERM: a small CNN trained on the training split
erm = ERMClassifier(max_epochs=8, patience=None, module__width=16, random_state=0)
erm.fit(data.train.X, data.train.y)
erm_groups = group_accuracies(data.test.y, erm.predict(data.test.X), groups=data.test.groups)
print("\nERM on the test split:\n", erm_groups, sep="")

# 2. DFR: retrain the last layer on the validation split, balanced by its true groups
dfr = DFRRetrainer(erm, random_state=0)
dfr.fit(data.val.X, data.val.y, groups=data.val.groups)
dfr_groups = group_accuracies(data.test.y, dfr.predict(data.test.X), groups=data.test.groups)
print(f"\nDFR (best C = {dfr.best_C_}) on the test split:\n", dfr_groups, sep="")

# 3. a picture: accuracy of every group, worst group outlined
names = data.group_names
results = [
    {"method": name, "group_accuracy": {names[int(g)]: a for g, a in zip(res.groups, res.accuracy)}}
    for name, res in (("ERM", erm_groups), ("DFR", dfr_groups))
]
out = os.environ.get("SKSHORTCUT_EXAMPLE_OUT") or tempfile.mkdtemp()
path = os.path.join(out, "erm_dfr_groups.png")
plot_group_accuracies(results, title="colored digits: test accuracy per group").savefig(path, dpi=100)
print(f"\nworst-group accuracy: ERM {erm_groups.worst:.3f} -> DFR {dfr_groups.worst:.3f}; figure: {path}")
