"""Run configuration: the search space, the data and the training recipe.

A config file is YAML with the sections ``space``, ``data``, ``train`` and ``focus``;
missing keys take the defaults below. Shipped configs live in ``configs/`` and
are installed with the package, so ``--config digits`` works from anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Optional, Sequence

import yaml

from .budget import Budget, check_in_range, parse_budgets
from .errors import ConfigError
from .spaces import SearchSpace
from .spaces.base import read_yaml
from .typed import from_mapping, to_mapping

DatasetName = Literal["digits", "fashion-mnist", "cifar10", "cifar100", "imagefolder"]
SamplerName = Literal["focus", "uniform", "sandwich"]
DEFAULT_CONFIG = "digits"
_SECTIONS = ("space", "data", "train", "focus")


@dataclass(frozen=True)
class DataConfig:
    dataset: DatasetName = "digits"
    #: Where the data lives; ``None`` means the dataset's default location.
    data_dir: Optional[str] = None
    #: Images held out from the train set for search and subnet selection (never the test set).
    search_val_size: int = 180
    #: Let torchvision download CIFAR when it is missing (off: nothing is fetched unasked).
    download: bool = False
    #: Fraction of the digits set used as its test split (it ships without one).
    digits_test_fraction: float = 0.2
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.search_val_size < 1:
            raise ConfigError(f"data.search_val_size: must be at least 1, got {self.search_val_size}")
        if not 0.0 < self.digits_test_fraction < 1.0:
            raise ConfigError(
                f"data.digits_test_fraction: must be between 0 and 1, got {self.digits_test_fraction}"
            )
        if self.num_workers < 0:
            raise ConfigError(f"data.num_workers: must be 0 or more, got {self.num_workers}")


@dataclass(frozen=True)
class TrainConfig:
    """DeiT's recipe as AutoFormer uses it; augmentations marked RGB apply to 3-channel data only."""

    epochs: int = 40
    batch_size: int = 64
    #: Peak learning rate (absolute: scale it with the batch size yourself, DeiT uses 5e-4 x batch/512).
    lr: float = 5e-4
    min_lr: float = 1e-5
    warmup_epochs: int = 5
    warmup_lr: float = 1e-6
    weight_decay: float = 0.05
    optimizer: str = "adamw"
    #: Max gradient norm; ``null`` turns clipping off.
    clip_grad: Optional[float] = 5.0
    label_smoothing: float = 0.1
    mixup: float = 0.8
    cutmix: float = 1.0
    #: RandAugment policy for RGB data (timm syntax); ``null`` turns it off.
    randaugment: Optional[str] = "rand-m9-mstd0.5-inc1"
    #: Random-erasing probability for RGB data.
    random_erasing: float = 0.25
    drop_path: float = 0.1
    #: How subnets are chosen each step: the learned ``focus`` sampler, ``uniform``
    #: (AutoFormer) or ``sandwich`` (largest + smallest + one random subnet per step).
    sampler: SamplerName = "focus"
    #: MAC budgets users deploy at, comma-separated (``"8M,15M,25M"``); empty: the whole range.
    #: The focus sampler trains for budgets drawn from this list. Uniform and sandwich sampling
    #: use it on spaces with identity layers (ViTAS): each step draws a budget and makes each
    #: layer an identity with the probability calibrated for it (ViTAS's identity calibration).
    target_budgets: str = ""
    eval_batch_size: int = 256
    #: Also write last.pt every this many steps within an epoch (0: only at the end of each epoch).
    checkpoint_every: int = 0
    #: bf16 autocast when training on CUDA (ignored on CPU).
    amp: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name}: must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "min_lr", "warmup_lr", "weight_decay", "label_smoothing", "mixup", "cutmix",
                     "random_erasing", "drop_path"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name}: must be 0 or more, got {getattr(self, name)}")
        if self.lr == 0:
            raise ConfigError("train.lr: must be positive")
        if self.checkpoint_every < 0:
            raise ConfigError(f"train.checkpoint_every: must be 0 or more, got {self.checkpoint_every}")
        if self.warmup_epochs < 0:
            raise ConfigError(f"train.warmup_epochs: must be 0 or more, got {self.warmup_epochs}")
        if self.clip_grad is not None and self.clip_grad <= 0:
            raise ConfigError(f"train.clip_grad: must be positive or null, got {self.clip_grad}")
        for name in ("label_smoothing", "random_erasing", "drop_path"):
            if getattr(self, name) >= 1:
                raise ConfigError(f"train.{name}: must be below 1, got {getattr(self, name)}")
        if self.target_budgets.strip():
            try:
                parse_budgets(self.target_budgets)
            except ConfigError as exc:
                raise ConfigError(f"train.target_budgets: {exc}") from None

    @property
    def budgets(self) -> tuple[float, ...]:
        """The parsed ``target_budgets`` in MACs (empty: none)."""
        if not self.target_budgets.strip():
            return ()
        return tuple(b.value for b in parse_budgets(self.target_budgets))


@dataclass(frozen=True)
class FocusConfig:
    """The learned, budget-conditioned sampler (``train.sampler: focus``)."""

    #: Fraction of all training steps that sample uniformly before the sampler takes over.
    warmup_fraction: float = 0.25
    #: After warm-up, the share of steps that still train a uniformly random subnet.
    uniform_share: float = 0.25
    #: Target band: the sampler aims at MACs in [(1 - band) * budget, budget].
    band: float = 0.1
    #: Measure candidates, refit the predictor and update the sampler every this many steps.
    update_every: int = 50
    #: Candidates scored with inherited weights at each update (half sampler, half uniform).
    eval_candidates: int = 8
    #: Search-val images used to score a candidate during training.
    eval_images: int = 500
    #: Most recent measurements the predictor learns from.
    measurement_window: int = 512
    hidden_dim: int = 64
    lr: float = 1e-3
    predictor_steps: int = 30
    policy_steps: int = 10
    #: Budgets per policy step, and samples per budget (their mean reward is the baseline).
    policy_budgets: int = 16
    policy_group: int = 8
    entropy_weight: float = 0.05

    def __post_init__(self) -> None:
        for name in ("warmup_fraction", "uniform_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"focus.{name}: must be between 0 and 1, got {getattr(self, name)}")
        if not 0.0 <= self.band < 1.0:
            raise ConfigError(f"focus.band: must be in [0, 1), got {self.band}")
        for name in ("update_every", "eval_images", "measurement_window", "hidden_dim", "predictor_steps",
                     "policy_steps", "policy_budgets"):
            if getattr(self, name) < 1:
                raise ConfigError(f"focus.{name}: must be at least 1, got {getattr(self, name)}")
        if self.eval_candidates < 2 or self.policy_group < 2:
            raise ConfigError("focus.eval_candidates and focus.policy_group: must be at least 2")
        if self.lr <= 0 or self.entropy_weight < 0:
            raise ConfigError("focus.lr: must be positive; focus.entropy_weight: must be 0 or more")


@dataclass(frozen=True)
class Config:
    space: SearchSpace
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    focus: FocusConfig = field(default_factory=FocusConfig)

    def __post_init__(self) -> None:
        budgets = self.train.budgets
        if not budgets:
            return
        if self.train.sampler != "focus" and not self.space.has_identity:
            raise ConfigError(
                f"train.target_budgets: {self.train.sampler} sampling uses target budgets only to calibrate "
                f"identity layers, and this {self.space.family} space has none; drop target_budgets or use "
                "--sampler focus"
            )
        macs = self.space.cost_model("macs")
        for budget in budgets:
            try:
                check_in_range(Budget(budget), macs.min_cost, macs.max_cost)
            except ConfigError as exc:
                raise ConfigError(f"train.target_budgets: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "config") -> Config:
        return from_mapping(cls, data, where)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _rgb_augmented(config: Config) -> bool:
    data = config.data
    return data.dataset in ("cifar10", "cifar100") or (data.dataset == "imagefolder" and config.space.in_chans == 3)


#: Settings that do something for some configs only: (key, or section prefix ending in ".";
#: whether it applies to a config; why not).
_APPLIES_TO: tuple[tuple[str, Callable[[Config], bool], str], ...] = (
    ("data.data_dir", lambda c: c.data.dataset != "digits", "digits is bundled with scikit-learn and reads no directory"),
    ("data.download", lambda c: c.data.dataset in ("cifar10", "cifar100"), "only cifar10 and cifar100 are downloaded"),
    ("data.digits_test_fraction", lambda c: c.data.dataset == "digits",
     "only digits ships without a test split to cut"),
    ("train.randaugment", _rgb_augmented, "RandAugment runs on RGB data only (cifar, or imagefolder with in_chans 3)"),
    ("train.random_erasing", _rgb_augmented,
     "random erasing runs on RGB data only (cifar, or imagefolder with in_chans 3)"),
    ("focus.", lambda c: c.train.sampler == "focus", "focus settings are for the focus sampler only"),
)


def check_applicable(config: Config, given: Mapping[str, str]) -> None:
    """ConfigError for the first setting in ``given`` (config key -> the flag that set it) that would
    do nothing for ``config``: a flag silently ignored is worse than one refused."""
    for key, flag in given.items():
        for target, applies, why in _APPLIES_TO:
            matches = key.startswith(target) if target.endswith(".") else key == target
            if matches and not applies(config):
                raise ConfigError(f"{flag}: {why}, so it would do nothing for this config; drop it")


def shipped_configs() -> list[str]:
    """Names of the configs installed with the package (``configs/*.yaml``)."""
    return sorted(p.name[: -len(".yaml")] for p in resources.files("focusformer.configs").iterdir()
                  if p.name.endswith(".yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A path to a YAML file, or the name of a shipped config such as ``digits``."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        return path
    shipped = resources.files("focusformer.configs") / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise ConfigError(
            f"config {str(name_or_path)!r}: no such file or shipped config; shipped: {', '.join(shipped_configs())}"
        )
    return Path(str(shipped))


def load_config(
    name_or_path: str | Path = DEFAULT_CONFIG,
    overrides: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
) -> Config:
    """Load a config, then apply ``section.key=value`` overrides (values parsed as YAML),
    then ``values``: already-typed ``{"section.key": value}`` settings (from command-line flags)."""
    path = resolve_config_path(name_or_path)
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with space, data, train and focus sections")
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep:
            raise ConfigError(f"override {override!r}: expected SECTION.KEY=VALUE, e.g. train.epochs=5")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"override {override!r}: value is not valid YAML") from None
        set_value(data, key, value)
    for key, value in (values or {}).items():
        set_value(data, key, value)
    try:
        return Config.from_dict(data, where="")
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def set_value(data: dict[str, Any], dotted_key: str, value: Any) -> None:
    """Set ``data[section][key] = value`` for ``dotted_key == "section.key"``."""
    parts = dotted_key.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"override {dotted_key!r}: expected SECTION.KEY=VALUE, e.g. train.epochs=5")
    section, name = parts
    if section not in _SECTIONS:
        raise ConfigError(
            f"override {dotted_key!r}: unknown section {section!r}; allowed: {', '.join(_SECTIONS)}"
        )
    target = data.setdefault(section, {})
    if not isinstance(target, dict):
        raise ConfigError(f"override {dotted_key!r}: section {section!r} is not a mapping")
    target[name] = value
