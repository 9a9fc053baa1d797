"""Data sets of ``skshortcut benchmark``."""

from __future__ import annotations

from .core import register_dataset


#: ERM settings of the benchmark: a small CNN trained briefly, so that it leans on the
#: shortcut while its features still carry the core signal (see docs/user_guide/dfr.rst).
ERM_PARAMS = {"max_epochs": 8, "patience": None, "module__width": 16}


def _n(base, scale):
    return max(20, int(round(base * scale)))


@register_dataset(
    "colored-digits",
    description="digits, label = digit >= 5, stroke colour agrees with the label in 95% of train/val, "
    "50% of test (the default)",
    erm_params=ERM_PARAMS,
)
def colored_digits(seed, scale):
    from ..datasets import make_colored_digits

    return make_colored_digits(_n(4000, scale), _n(2000, scale), _n(2000, scale), regime="default", random_state=seed)


@register_dataset(
    "colored-digits-cmnist",
    description="ExMap's C-MNIST regime: colour agrees with the label in 99% of every split",
    erm_params=ERM_PARAMS,
)
def colored_digits_cmnist(seed, scale):
    from ..datasets import make_colored_digits

    return make_colored_digits(_n(4000, scale), _n(2000, scale), _n(2000, scale), regime="cmnist", random_state=seed)


@register_dataset(
    "patch-digits",
    description="digits with a coloured corner patch on 90% of one class in train/val",
    erm_params=ERM_PARAMS,
)
def patch_digits(seed, scale):
    from ..datasets import make_patch_digits

    return make_patch_digits(_n(4000, scale), _n(2000, scale), _n(2000, scale), random_state=seed)


@register_dataset(
    "dominoes",
    description="a spurious digit pair above the core digit pair, fully correlated in train, independent in test",
    erm_params=ERM_PARAMS,
)
def dominoes(seed, scale):
    from ..datasets import make_dominoes

    return make_dominoes(_n(4000, scale), _n(2000, scale), _n(2000, scale), random_state=seed)
