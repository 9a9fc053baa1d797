"""zennit's generalised LRP-gamma rule for convolutions, with a closed-form backward pass.

zennit's :class:`~zennit.rules.Gamma` (Montavon et al., 2019; Andeol et al., 2021) evaluates, in
the backward pass of every convolution, five modified forward passes (positive and negative
inputs against the gamma-inflated positive and negative weights, plus the unmodified layer) and
the gradients of all five. By the linearity of a convolution in its input and in its weights the
same relevance needs one extra forward convolution and two input gradients. Writing
:math:`z = W * x` (bias excluded), :math:`a = |W| * |x|`, :math:`c = 1 + \\gamma/2` and
:math:`d = \\gamma/2`, the four modified passes sum to

.. math:: z^{\\uparrow} = c\\,z + d\\,a + b + \\gamma\\,b^+,\\qquad
          z^{\\downarrow} = c\\,z - d\\,a + b + \\gamma\\,b^-,

the relevance of the output, :math:`R`, is split into
:math:`s^{\\uparrow} = [y > 0]\\,R / z^{\\uparrow}` and :math:`s^{\\downarrow} = [y < 0]\\,R / z^{\\downarrow}`
(:math:`y` the layer's output, the denominators stabilised as in zennit), and the relevance of the
input is

.. math:: R_x = c\\,x \\odot W^\\top (s^{\\uparrow} + s^{\\downarrow})
          + d\\,|x| \\odot |W|^\\top (s^{\\uparrow} - s^{\\downarrow}),

with :math:`W^\\top` the transposed convolution (the input gradient). zennit's rule is kept for
the layers this form does not cover (transposed convolutions, non-zero padding modes, string
paddings, zeroed parameters, callable stabilisers): there its own backward pass runs unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from zennit.core import RemovableHandle, RemovableHandleList
from zennit.rules import Gamma

_INPUT_GRAD = {1: F.grad.conv1d_input, 2: F.grad.conv2d_input, 3: F.grad.conv3d_input}


class _Relay(torch.autograd.Function):
    """Identity on the layer's output whose backward pass is the rule's relevance for the layer's input."""

    @staticmethod
    def forward(ctx, graph_input, box):
        ctx.box = box
        return box[1]  # the layer's output (detached): not an input of the Function, so not a view

    @staticmethod
    def backward(ctx, relevance):
        rule, y, y_version, module, x, x_version, weight, bias = ctx.box
        ctx.box = None
        if x._version != x_version:
            raise RuntimeError(
                f"The input of {type(module).__name__} was modified in place after the layer ran; "
                "LRP needs it unchanged (use out-of-place operations after this layer)."
            )
        return rule.relevance(module, x, y, y_version, weight, bias, relevance), None


class ClosedFormGamma(Gamma):
    """zennit's :class:`~zennit.rules.Gamma` with the closed-form backward pass of the module docstring.

    The relevance equals zennit's up to float rounding (the tests compare both on a small CNN and
    on a torchvision ResNet); layers the closed form does not cover get zennit's own hooks.

    On a covered layer the hook does not go through the layer's own autograd node: the layer runs
    on a detached input and its output is relayed to the input's graph by a function whose
    backward pass returns the relevance. zennit's hooks let autograd compute the layer's input
    gradient and then replace it; the relay saves that transposed convolution and zennit's
    copies of the layer's input.

    Parameters
    ----------
    gamma : float, default=0.25
        Multiplier of the added positive (negative) weights.
    stabilizer : float or callable, default=1e-6
        As in zennit: ``z + stabilizer * sign(z)`` (sign of 0 taken as +1) in the denominators.
    zero_params : list of str, optional
        Parameter names treated as zero (these layers take zennit's own backward pass).
    """

    def __init__(self, gamma=0.25, stabilizer=1e-6, zero_params=None):
        super().__init__(gamma=gamma, stabilizer=stabilizer, zero_params=zero_params)
        self.gamma = float(gamma)
        self.stabilizer = stabilizer
        self.zero_params = zero_params

    def copy(self):
        """A fresh hook with the same parameters (zennit makes one per layer)."""
        return type(self)(self.gamma, self.stabilizer, self.zero_params)

    def covers(self, module) -> bool:
        """Whether the closed form applies to ``module`` (else zennit's own rule runs)."""
        zero = set(self.zero_params or ())
        return (
            type(module) in (nn.Conv1d, nn.Conv2d, nn.Conv3d)
            and module.padding_mode == "zeros"
            and not isinstance(module.padding, str)
            # with a zeroed bias the denominators are no longer bounded away from 0 by the output and
            # zennit's five passes and the closed form round differently there: keep zennit's
            and (not zero or (zero <= {"bias"} and module.bias is None))
            and isinstance(self.stabilizer, (int, float))
        )

    def register(self, module):
        """Register on ``module``: the relay where the closed form applies, zennit's hooks elsewhere."""
        if not self.covers(module):
            return super().register(module)
        return RemovableHandleList(
            [
                RemovableHandle(self),
                module.register_forward_pre_hook(self._detach_input),
                module.register_forward_hook(self._relay_output),
            ]
        )

    def _detach_input(self, module, args):
        if not self.active or not args or not torch.is_tensor(args[0]) or not args[0].requires_grad:
            return None
        self.stored_tensors["graph_input"] = args[0]
        return (args[0].detach(),) + tuple(args[1:])

    def _relay_output(self, module, args, output):
        graph_input = self.stored_tensors.pop("graph_input", None)
        if graph_input is None:
            return None
        y = output.detach()
        bias = None if module.bias is None else module.bias.detach()
        box = [self, y, y._version, module, args[0], args[0]._version, module.weight.detach(), bias]
        return _Relay.apply(graph_input, box)

    def relevance(self, module, x, y, version, weight, bias, relevance):
        """The closed form: relevance of the input ``x`` from the relevance of the output ``y``."""
        if y._version != version:  # the output was changed in place after the layer
            with torch.no_grad():
                y = module._conv_forward(x, weight, bias)
        gamma, eps = self.gamma, float(self.stabilizer)
        c, d = 1.0 + gamma / 2.0, gamma / 2.0
        view = (1, -1) + (1,) * (x.ndim - 2)
        # in-place arithmetic into one buffer: on CPU each fresh activation-sized tensor costs page faults
        with torch.no_grad():
            nonnegative = bool(x.min() >= 0)  # after a ReLU, and for images in [0, 1]
            abs_x = x if nonnegative else x.abs()
            abs_w = weight.abs()
            a = module._conv_forward(abs_x, abs_w, None)
            n_out = y.shape[1]
            buf = torch.empty((y.shape[0], 2 * n_out) + tuple(y.shape[2:]), dtype=y.dtype, device=y.device)
            up, down = buf[:, :n_out], buf[:, n_out:]
            # z^up = c (y - b) + d a + b + gamma b^+, z^down = c (y - b) - d a + b + gamma b^-;
            # zennit's stabiliser adds eps * sign: where y > 0, z^up >= y > 0 and where y < 0,
            # z^down <= y < 0 (each half counts only there), so the sign is known
            shift_up = torch.full((n_out,), eps, dtype=y.dtype, device=y.device)
            shift_down = torch.full((n_out,), -eps, dtype=y.dtype, device=y.device)
            if bias is not None:
                shift_up = shift_up + (1.0 - c) * bias + gamma * bias.clamp(min=0)
                shift_down = shift_down + (1.0 - c) * bias + gamma * bias.clamp(max=0)
            torch.mul(y, c, out=up).add_(a, alpha=d).add_(shift_up.view(view))
            torch.mul(y, c, out=down).sub_(a, alpha=d).add_(shift_down.view(view))
            del a
            torch.div(relevance, up, out=up).masked_fill_(y <= 0, 0.0)
            torch.div(relevance, down, out=down).masked_fill_(y >= 0, 0.0)
            # the halves never overlap: up + down and up - down = (up + down) - 2 down are exact
            up.add_(down)
            down.mul_(-2.0).add_(up)
            stacked = torch.cat([c * weight, d * abs_w], dim=0)
            kw = {"stride": module.stride, "padding": module.padding, "dilation": module.dilation}
            input_grad = _INPUT_GRAD[x.ndim - 2]
            if nonnegative and module.groups == 1:
                # x (c W^T s_sum + d |W|^T s_diff): one transposed convolution of the stacked weights
                result = input_grad(x.shape, stacked, buf, groups=1, **kw).mul_(x)
            else:
                # doubled groups keep the two products apart: [c W^T s_sum, d |W|^T s_diff]
                shape = (x.shape[0], 2 * x.shape[1]) + tuple(x.shape[2:])
                both = input_grad(shape, stacked, buf, groups=2 * module.groups, **kw)
                n_in = x.shape[1]
                first, second = both[:, :n_in], both[:, n_in:]
                if nonnegative:
                    result = first.add_(second).mul_(x)
                else:
                    result = first.mul_(x).add_(second.mul_(abs_x))
        return result
