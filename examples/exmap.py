"""ExMap: group robustness without group labels, from the model's own heatmaps.

ERM leans on the stroke colour of the digits (it agrees with the label for 95%
of training and validation images, half of the test images). Nobody tells us
so: we have no group labels. ExMap asks the model where it looks. The LRP
heatmaps of red and green digits put their relevance in different colour
channels, so clustering the heatmaps of the validation split recovers the
colour; class x cluster pseudo-groups then let DFR retrain the last layer as
if the true groups were known.

Run: ``python examples/exmap.py``; the figures go to the folder named by
``SKSHORTCUT_EXAMPLE_OUT`` (default: a temporary folder).
"""

import os
import tempfile

from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import Pipeline

from skshortcut import DFRRetrainer, ERMClassifier, ExMapGrouper, group_accuracies
from skshortcut.datasets import make_colored_digits
from skshortcut.plotting import plot_group_contingency, plot_group_heatmaps

data = make_colored_digits(2000, 1000, 1000, regime="default", random_state=0)
train, val, test = data.train, data.val, data.test

# 1. the base model: ERM on the training split learns the colour shortcut
erm = ERMClassifier(max_epochs=6, patience=None, module__width=16, random_state=0).fit(train.X, train.y)
erm_groups = group_accuracies(test.y, erm.predict(test.X), groups=test.groups)
print("ERM on the test split:\n", erm_groups, sep="")

# 2. ExMap + DFR on the validation split, with no group labels (the papers' workflow)
model = Pipeline([
    ("groups", ExMapGrouper(erm, random_state=0)),
    ("clf", DFRRetrainer(random_state=0)),
]).fit(val.X, val.y)
grouper = model.named_steps["groups"]
ari = adjusted_rand_score(val.groups, grouper.groups_)
print(f"\nExMap: {grouper.n_clusters_} heatmap clusters (estimated); pseudo-groups vs the hidden true groups: "
      f"adjusted Rand index {ari:.3f}")

# predicting costs one embedding pass: the pseudo-groups of test images are computed only if read
exmap_groups = group_accuracies(test.y, model.predict(test.X), groups=test.groups)
print("\nExMap + DFR on the test split:\n", exmap_groups, sep="")

# 3. pictures: what each pseudo-group looks at (the paper's figure 5), and pseudo vs true groups
out = os.environ.get("SKSHORTCUT_EXAMPLE_OUT") or tempfile.mkdtemp()
heatmaps = grouper.heatmaps(val.X[:400])
fig = plot_group_heatmaps(val.X[:400], heatmaps, grouper.groups_[:400], n_per_group=5,
                          group_names=grouper.group_names_, title="LRP heatmaps per ExMap pseudo-group")
fig.savefig(os.path.join(out, "exmap_heatmaps.png"), dpi=110)
names = {g: n for g, n in enumerate(data.group_names)}
fig = plot_group_contingency(grouper.groups_, val.groups, pseudo_names=grouper.group_names_, true_names=names)
fig.savefig(os.path.join(out, "exmap_contingency.png"), dpi=110)
print(f"\nworst-group accuracy without group labels: ERM {erm_groups.worst:.3f} -> ExMap + DFR "
      f"{exmap_groups.worst:.3f}; figures in {out}")
