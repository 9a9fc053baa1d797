"""Three last-layer baselines on one ERM model: AFR, JTT and Group DRO.

The digits' stroke colour agrees with the label (digit >= 5) for 95% of the
training and validation images, and for half of the test images. A small CNN
trained by ERM leans on the colour. Each method retrains only its last layer on
the validation split: AFR weights the images ERM is unsure of (group labels only
choose its two hyperparameters), JTT up-weights the images ERM misclassifies
(no group labels), Group DRO trains for the worst of the true groups.

Run: ``python examples/last_layer.py`` (a few minutes on a laptop CPU).
"""

from sklearn.frozen import FrozenEstimator

from skshortcut import ERMClassifier, group_accuracies
from skshortcut.datasets import make_colored_digits
from skshortcut.retraining import AFRRetrainer, GroupDRORetrainer, JTTRetrainer

data = make_colored_digits(4000, 2000, 2000, regime="default", random_state=0)
train, val, test = data.train, data.val, data.test

# the base model: a small CNN trained by ERM on the training split
erm = ERMClassifier(max_epochs=8, patience=None, module__width=16, random_state=0).fit(train.X, train.y)
base = FrozenEstimator(erm)

models = {
    "ERM": erm,
    "AFR": AFRRetrainer(base, random_state=0).fit(val.X, val.y, groups=val.groups),
    "JTT": JTTRetrainer(base, lambda_up=20).fit(val.X, val.y),
    "Group DRO": GroupDRORetrainer(base, random_state=0).fit(val.X, val.y, groups=val.groups),
}
print(f"{'method':10s} {'mean':>6s} {'worst-group':>12s}")
for name, model in models.items():
    y_pred = model.predict(test.X)
    res = group_accuracies(test.y, y_pred, groups=test.groups)
    print(f"{name:10s} {(y_pred == test.y).mean():6.3f} {res.worst:12.3f}")
afr = models["AFR"]
print(f"\nAFR chose gamma={afr.best_gamma_}, lambda={afr.best_lambda_} on {afr.selected_on_} accuracy;")
print(f"JTT's error set held {len(models['JTT'].error_set_)} of {len(val.y)} validation images.")
