# The torchvision-weights block of docs/user_guide/backbones.rst against what a test machine has:
# no network, so a temporary TORCH_HOME holds a (random) state dict under the file name torchvision
# expects, for resnet18 instead of resnet50 (smaller); the calls are the same.
import os
import tempfile

import torch
import torchvision
from torchvision.models import ResNet18_Weights

from skshortcut import ERMClassifier
from skshortcut.backbones import weights_file
from skshortcut.nets import build_classifier

os.environ["TORCH_HOME"] = tempfile.mkdtemp()
path = weights_file(ResNet18_Weights.IMAGENET1K_V1)
path.parent.mkdir(parents=True)
torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)

net = build_classifier("resnet18", (3, 224, 224), 2, weights=ResNet18_Weights.IMAGENET1K_V1)
print(net.mean, net.std)                 # (0.485, 0.456, 0.406) (0.229, 0.224, 0.225)
assert net.mean == (0.485, 0.456, 0.406)
clf = ERMClassifier("resnet18", weights="DEFAULT", recipe="finetune")
del os.environ["TORCH_HOME"]
