"""Mask-and-Combine: retrain the last layer on masked and recombined images.

Digit dominoes: an easy digit (0 or 1, the shortcut) on top of a harder one
(3 or 8, the label). In the training split the top digit agrees with the
label for 95% of the images; the validation and test splits are balanced, as
in Waterbirds. A small CNN trained by ERM leans on the top digit and fails
the minority groups.

Mask-and-Combine keeps the ERM feature extractor frozen. The top-K pixels of
each training image's XGradCAM heatmap form a mask, mostly on the bottom,
core digit (the table printed below is the paper's table 1 for this data
set); the removed images (Eq. 1) blank everything else, and the combined
images (Eq. 2) put the core digit under the top digit of an image of the
other class, keeping the core digit's label. Retraining only the last layer
on them teaches it that the top digit does not decide the class. The
validation split's group labels only choose the epoch.

Run: ``python examples/mask_and_combine.py``; the figure goes to the folder
named by ``SKSHORTCUT_EXAMPLE_OUT`` (default: a temporary folder).
"""

import os
import tempfile

from skshortcut import ERMClassifier, MaskAndCombineRetrainer, group_accuracies
from skshortcut.datasets import make_dominoes
from skshortcut.plotting import plot_mask_and_combine
from skshortcut.retraining.mask_and_combine import mask_region_table

# the data set of `skshortcut benchmark --dataset dominoes-95`
data = make_dominoes(4000, 2000, 2000, correlation=0.9, val_correlation=0.0, test_correlation=0.0, random_state=0)
train, val, test = data.train, data.val, data.test
print(data.DESCR.splitlines()[0])

# 1. ERM: a small CNN trained on the training split
erm = ERMClassifier(max_epochs=8, patience=None, module__width=16, random_state=0)
erm.fit(train.X, train.y)
erm_groups = group_accuracies(test.y, erm.predict(test.X), groups=test.groups)
print("\nERM on the test split:\n", erm_groups, sep="")

# 2. Mask-and-Combine: the last layer retrained on the training split (Eq. 6, the paper's Waterbirds
#    weights alpha=2, beta=3), the epoch with the best validation worst-group accuracy kept
mac = MaskAndCombineRetrainer(erm, alpha=2.0, beta=3.0, validation_data=(val.X, val.y, val.groups),
                              max_epochs=4, random_state=0)
mac.fit(train.X, train.y)
mac_groups = group_accuracies(test.y, mac.predict(test.X), groups=test.groups)
print(f"\nMask-and-Combine (epoch {mac.best_epoch_} kept) on the test split:\n", mac_groups, sep="")

# the same retraining without the interventions (alpha=beta=0), for comparison
plain = MaskAndCombineRetrainer(erm, alpha=0.0, beta=0.0, validation_data=(val.X, val.y, val.groups),
                                max_epochs=4, random_state=0).fit(train.X, train.y)
plain_worst = group_accuracies(test.y, plain.predict(test.X), groups=test.groups).worst

# 3. where the masks fall (the paper's table 1), and a picture of the interventions; the minority
#    groups are 5% of the training split, so the table takes 1,000 images (about 20 per minority group)
masks = mac.compute_masks(train.X[:1000], train.y[:1000])
table = mask_region_table(masks, data.core_region, train.groups[:1000], group_names=data.group_names)
print("\nshare of the masks on the core half, per training group:")
for name, row in table.items():
    print(f"  {name:<28} {row['mask_on_core']:.2f}  ({row['n']} images)")
out = os.environ.get("SKSHORTCUT_EXAMPLE_OUT") or tempfile.mkdtemp()
path = os.path.join(out, "mask_and_combine.png")
fig = plot_mask_and_combine(train.X[:300], masks[:300], train.y[:300], n_samples=6, title="digit dominoes")
fig.savefig(path, dpi=100, bbox_inches="tight")
print(f"\nworst-group accuracy: ERM {erm_groups.worst:.3f} -> MaC {mac_groups.worst:.3f} "
      f"(last layer retrained without the interventions: {plain_worst:.3f}); figure: {path}")
