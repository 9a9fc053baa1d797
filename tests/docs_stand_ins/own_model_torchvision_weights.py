# The torchvision-weights block of docs/user_guide/own_model.rst against what a test machine has:
# no network, so a temporary TORCH_HOME holds a (random) state dict under the file name torchvision
# expects, for resnet18 instead of resnet50 (smaller), fine-tuned one epoch at 32 px; the calls are the same.
import os
import tempfile

import torch
import torchvision
from torchvision.models import ResNet18_Weights

from skshortcut import ERMClassifier
from skshortcut.backbones import weights_file

_torch_home = os.environ.get("TORCH_HOME")
os.environ["TORCH_HOME"] = tempfile.mkdtemp()
path = weights_file(ResNet18_Weights.IMAGENET1K_V1)
path.parent.mkdir(parents=True)
torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)

resnet = ERMClassifier("resnet18", weights=ResNet18_Weights.IMAGENET1K_V1, recipe="finetune", module__image_size=32,
                       max_epochs=1, device="cpu", random_state=0)
resnet.fit(train)
print(resnet.module_.mean, resnet.recipe_["augment"] is not None)   # ImageNet normalisation, crop + flip
assert resnet.module_.mean == (0.485, 0.456, 0.406)
if _torch_home is None:
    del os.environ["TORCH_HOME"]
else:
    os.environ["TORCH_HOME"] = _torch_home
