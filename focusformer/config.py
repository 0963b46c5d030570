"""Run configuration: the search space, the data and the training recipe.

A config file is YAML with the sections ``space``, ``data``, ``train``, ``focus`` and
``attentive``;
missing keys take the defaults below. Shipped configs live in ``configs/`` and
are installed with the package, so ``--config digits`` works from anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Optional, Sequence

import yaml

from .budget import Budget, check_in_range, parse_budgets
from .errors import ConfigError
from .fileio import read_yaml
from .spaces import ArchBase, SearchSpace
from .typed import from_mapping, to_mapping

#: Data sets by name; besides these, the names timm's ``create_dataset`` takes with a prefix.
BUILT_IN_DATASETS = ("digits", "fashion-mnist", "cifar10", "cifar100", "folder", "imagefolder")
TIMM_DATASET_PREFIXES = ("torch/", "hfds/", "wds/")
#: Where budget-aware samplers draw each step's budget when no target budgets are given.
BudgetPrior = Literal["uniform", "log-uniform"]
SamplerName = Literal["focus", "uniform", "attentive"]
RewardName = Literal["distill", "loss", "top1"]
DistillName = Literal["none", "kl", "alpha"]
DEFAULT_CONFIG = "digits"
#: ``train.scale_lr`` scales ``train.lr`` by global batch / this, as DeiT does.
DEIT_BASE_BATCH = 512
SubnetInit = Literal["inherited", "scratch"]


@dataclass(frozen=True)
class DataConfig:
    #: One of :data:`BUILT_IN_DATASETS`, or ``torch/<name>``, ``hfds/<name>``, ``wds/<name>``.
    dataset: str = "digits"
    #: Where the data lives; ``None`` means the dataset's default location.
    data_dir: Optional[str] = None
    #: timm's split names (``--train-split``, ``--val-split``) for folder, torch/, hfds/ and wds/
    #: sets; a WebDataset split is a brace pattern of shards, e.g. ``train-{0000..0099}.tar``.
    train_split: str = "train"
    test_split: str = "validation"
    #: Images held out from the train set for search and subnet selection (never the test set).
    search_val_size: int = 180
    #: Further images held out from the train set, disjoint from search-val, that the focus
    #: sampler's reward scores: the images that steer training never select or score its result.
    #: Held out under every sampler, so that runs of one config train on the same images; 0 for
    #: none (any sampler but focus).
    reward_size: int = 500
    #: Seed of the permutation that holds out search-val and reward images. Fixed by default and
    #: independent of ``train.seed``, so runs of several seeds select and score on the same images.
    split_seed: int = 0
    #: Let torchvision download CIFAR or a torch/ set when missing (off: nothing is fetched unasked).
    download: bool = False
    #: Fraction of the digits set used as its test split (it ships without one).
    digits_test_fraction: float = 0.2
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.dataset not in BUILT_IN_DATASETS and not (
                self.dataset.startswith(TIMM_DATASET_PREFIXES) and self.dataset.split("/", 1)[1]):
            raise ConfigError(
                f"data.dataset: {self.dataset!r} is not allowed; choose one of "
                f"{', '.join(map(repr, BUILT_IN_DATASETS))}, or a timm name "
                f"{', '.join(p + '<name>' for p in TIMM_DATASET_PREFIXES)}"
            )
        if self.search_val_size < 1:
            raise ConfigError(f"data.search_val_size: must be at least 1, got {self.search_val_size}")
        if self.reward_size < 0:
            raise ConfigError(f"data.reward_size: must be 0 or more, got {self.reward_size}")
        if self.split_seed < 0:
            raise ConfigError(f"data.split_seed: must be 0 or more, got {self.split_seed}")
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
    #: The global batch: under torchrun it is split evenly over the processes, so a config
    #: trains the same run with any number of them.
    batch_size: int = 64
    #: Peak learning rate: absolute, or with ``scale_lr`` the rate at a global batch of 512.
    lr: float = 5e-4
    #: DeiT's linear scaling: the peak learning rate is ``lr x batch_size / 512``.
    scale_lr: bool = False
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
    #: Keep an exponential moving average of the weights (timm's ``ModelEmaV3``, as DeiT's recipe
    #: does): each epoch's search-val figures, the final report, specialize, search and exports then
    #: use the averaged weights; the training steps and the focus reward use the live ones.
    model_ema: bool = False
    #: The average's decay; it ramps up from 0 as ``1 - (1 + step) ** (-2/3)`` until it reaches this
    #: (timm's warm-up), so a short run is not dominated by its first weights.
    model_ema_decay: float = 0.9998
    #: How subnets are chosen each step: the learned ``focus`` sampler, ``uniform``
    #: (AutoFormer) or ``attentive`` (AttentiveNAS's BestUp: per budget, the best of a few
    #: candidates by minibatch loss).
    sampler: SamplerName = "focus"
    #: The sandwich rule: also train the largest and the smallest subnet every step, with any
    #: sampler (uniform with it is the classic sandwich: largest, smallest and one random subnet).
    sandwich: bool = False
    #: In-place distillation (needs the largest subnet in every step: ``sandwich: true``): the
    #: largest learns from the labels, the other subnets of the step from its soft targets, by KL
    #: (``kl``) or AlphaNet's adaptive alpha-divergence (``alpha``).
    distill: DistillName = "none"
    #: MAC budgets users deploy at, comma-separated (``"8M,15M,25M"``); empty: ``budget_prior``.
    #: Every sampler trains for budgets drawn from this list. Focus and attentive aim at the band
    #: ``[(1 - band) * budget, budget]`` of each; a uniform draw (uniform and sandwich sampling, and
    #: focus's exploration) lies in that band too, except on spaces with identity layers (ViTAS),
    #: where each layer is an identity with the probability calibrated for the budget (ViTAS's
    #: identity calibration).
    target_budgets: str = ""
    #: Without target budgets, where budgets are drawn that are not a step's own: attentive's step
    #: budgets, and the focus learner's (its measurements and policy updates; a focus step's
    #: budget is always its uniform draw's). ``uniform``: the MACs of a uniformly drawn subnet (the
    #: budgets uniform sampling trains at, so no compute drifts to a degenerate end of the range);
    #: ``log-uniform``: log-uniform over the space's MAC range.
    budget_prior: BudgetPrior = "uniform"
    eval_batch_size: int = 256
    #: Also write last.pt every this many steps within an epoch (0: only at the end of each epoch).
    checkpoint_every: int = 0
    #: bf16 autocast when training on CUDA (ignored on CPU).
    amp: bool = True
    #: TensorBoard event files in ``RUN/tensorboard/`` (rank 0), when the ``tensorboard``
    #: package is installed (``pip install 'focusformer[tensorboard]'``); without it, nothing.
    tensorboard: bool = True
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
        if not 0.0 < self.model_ema_decay < 1.0:
            raise ConfigError(f"train.model_ema_decay: must be between 0 and 1, got {self.model_ema_decay}")
        for name in ("label_smoothing", "random_erasing", "drop_path"):
            if getattr(self, name) >= 1:
                raise ConfigError(f"train.{name}: must be below 1, got {getattr(self, name)}")
        if self.distill != "none" and not self.sandwich:
            raise ConfigError(
                f"train.distill: {self.distill} distillation learns from the largest subnet of the same step; "
                "set train.sandwich: true (or --sandwich) so that every step trains it"
            )
        if self.target_budgets.strip():
            try:
                parse_budgets(self.target_budgets)
            except ConfigError as exc:
                raise ConfigError(f"train.target_budgets: {exc}") from None

    @property
    def peak_lr(self) -> float:
        """The learning rate the schedule peaks at: ``lr``, scaled by the global batch with ``scale_lr``."""
        return self.lr * self.batch_size / DEIT_BASE_BATCH if self.scale_lr else self.lr

    @property
    def budgets(self) -> tuple[float, ...]:
        """The parsed ``target_budgets`` in MACs (empty: none)."""
        if not self.target_budgets.strip():
            return ()
        return tuple(b.value for b in parse_budgets(self.target_budgets))


#: The band ``[(1 - band) * budget, budget]`` that uniform draws for a target budget fall in on
#: spaces without identity layers: ViTAS's band, where its identity calibration aims. The focus
#: and attentive samplers' ``band`` default to it.
UNIFORM_TARGET_BAND = 0.1


@dataclass(frozen=True)
class FocusConfig:
    """The learned, budget-conditioned sampler (``train.sampler: focus``)."""

    #: Fraction of all training steps before the sampler may steer (it also waits for a
    #: predictor that ranks: ``min_tau`` at ``stable_updates`` updates in a row).
    warmup_fraction: float = 0.1
    #: Exploration floor: the share of steps that train a uniform draw within the step's
    #: budget band instead of the policy's pick, so focus degrades to uniform, never below.
    uniform_share: float = 0.25
    #: Target band: the sampler aims at MACs in [(1 - band) * budget, budget].
    band: float = UNIFORM_TARGET_BAND
    #: Measure candidates, refit the predictor and update the sampler every this many steps.
    update_every: int = 100
    #: Candidates scored with inherited weights at each update, all for one budget (half from
    #: the policy once it steers, the rest uniform in the band): one comparable group.
    eval_candidates: int = 8
    #: Reward images scored per candidate during training: the first this many of the reward split
    #: (``data.reward_size``), the same images every time.
    eval_images: int = 500
    #: How candidates are scored: ``loss`` (minus cross-entropy), ``distill`` (minus KL to the
    #: largest subnet) or ``top1``. The continuous ones separate subnets of equal cost with far
    #: less noise than top-1 on the same images; ``loss`` lets the policy follow what wins at each
    #: budget, where ``distill`` pulls every budget towards the largest subnet's choices.
    reward: RewardName = "loss"
    #: Network-wide decisions the policy does not steer (``[patch_size]`` for ViTAS): each is drawn
    #: uniformly in the band, as a uniform draw would, and the policy decides the rest given it.
    #: For decisions that select private weights, where steering them only moves updates between
    #: weight sets.
    balanced: tuple[str, ...] = ()
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
    #: Each training step trains the best of this many policy samples for its budget, by the predictor.
    best_of: int = 4
    #: The policy's entropy is kept above this fraction of the uniform policy's: below it, a
    #: policy step only raises the entropy.
    entropy_floor: float = 0.5
    #: Trust region: an update's policy steps stop once KL(old policy || new) exceeds this (nats).
    max_kl: float = 0.05
    #: No policy update while the predictor's held-out Kendall tau (within groups) is below this.
    min_tau: float = 0.2
    #: Steering starts once ``min_tau`` held at this many updates in a row.
    stable_updates: int = 3

    def __post_init__(self) -> None:
        for name in ("warmup_fraction", "uniform_share", "entropy_floor"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"focus.{name}: must be between 0 and 1, got {getattr(self, name)}")
        if not 0.0 <= self.band < 1.0:
            raise ConfigError(f"focus.band: must be in [0, 1), got {self.band}")
        for name in ("update_every", "eval_images", "measurement_window", "hidden_dim", "predictor_steps",
                     "policy_steps", "policy_budgets", "best_of", "stable_updates"):
            if getattr(self, name) < 1:
                raise ConfigError(f"focus.{name}: must be at least 1, got {getattr(self, name)}")
        if self.eval_candidates < 2 or self.policy_group < 2:
            raise ConfigError("focus.eval_candidates and focus.policy_group: must be at least 2")
        if self.lr <= 0 or self.entropy_weight < 0:
            raise ConfigError("focus.lr: must be positive; focus.entropy_weight: must be 0 or more")
        if not self.max_kl > 0:
            raise ConfigError(f"focus.max_kl: must be positive, got {self.max_kl}")
        if not -1.0 <= self.min_tau <= 1.0:
            raise ConfigError(f"focus.min_tau: must be between -1 and 1, got {self.min_tau}")


@dataclass(frozen=True)
class AttentiveConfig:
    """AttentiveNAS's BestUp (``train.sampler: attentive``): per step, a budget from the
    deployment distribution, ``candidates`` uniform draws in its band, and the one with the
    lowest loss on the step's own minibatch (no gradient) is trained."""

    candidates: int = 3
    #: Target band, as ``focus.band``.
    band: float = UNIFORM_TARGET_BAND

    def __post_init__(self) -> None:
        if self.candidates < 1:
            raise ConfigError(f"attentive.candidates: must be at least 1, got {self.candidates}")
        if not 0.0 <= self.band < 1.0:
            raise ConfigError(f"attentive.band: must be in [0, 1), got {self.band}")


@dataclass(frozen=True)
class SubnetConfig:
    """A run that trains one subnet as a dense model (``focusformer-train --subnet DIR``) instead
    of a supernet: the arch, its first weights, and where they came from."""

    #: The arch's own fields, as ``arch.json`` holds them; unset: the run trains a supernet.
    arch: Optional[dict[str, Any]] = None
    #: ``inherited``: start from the exported weights (fine-tuning); ``scratch``: timm's
    #: initialisation (retraining, as AutoFormer's and ViTAS's searches end).
    init: SubnetInit = "inherited"
    #: The exported subnet the run started from, as given (a record; read when the run starts only).
    source: str = ""


@dataclass(frozen=True)
class Config:
    space: SearchSpace
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    focus: FocusConfig = field(default_factory=FocusConfig)
    attentive: AttentiveConfig = field(default_factory=AttentiveConfig)
    subnet: SubnetConfig = field(default_factory=SubnetConfig)

    @property
    def target_band(self) -> float:
        """The band of a target budget that this run's sampler aims at (its ``band``; uniform's
        :data:`UNIFORM_TARGET_BAND`)."""
        return {"attentive": self.attentive.band, "focus": self.focus.band}.get(self.train.sampler,
                                                                                UNIFORM_TARGET_BAND)

    @property
    def subnet_arch(self) -> ArchBase | None:
        """The arch a subnet run trains (validated against the space), or None for a supernet run."""
        if self.subnet.arch is None:
            return None
        try:
            return self.space.validate(self.space.arch_from_dict(self.subnet.arch, where="subnet.arch"))
        except ConfigError as exc:
            raise ConfigError(f"subnet.arch: {exc}") from None

    def __post_init__(self) -> None:
        self.space.decision_plan().network_slots(self.focus.balanced, "focus.balanced")
        if self.subnet.arch is not None:
            self.subnet_arch  # noqa: B018 -- validates it now, with the message naming the key
            train = self.train
            plain = (("train.sampler", train.sampler, "uniform"), ("train.sandwich", train.sandwich, False),
                     ("train.distill", train.distill, "none"), ("train.target_budgets", train.target_budgets, ""))
            for flag, value, default in plain:
                if value != default:
                    raise ConfigError(f"{flag}: {value!r} chooses subnets of a supernet; a subnet run trains one arch")
        budgets = self.train.budgets
        if not budgets:
            return
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
        train = data.get("train") if isinstance(data, Mapping) else None
        if isinstance(train, Mapping) and train.get("sampler") == "sandwich":
            raise ConfigError(f"{where + '.' if where else ''}train.sampler: 'sandwich' is the uniform sampler with "
                              "train.sandwich: true (--sampler uniform --sandwich)")
        return from_mapping(cls, data, where)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _rgb_augmented(config: Config) -> bool:
    return config.data.dataset not in ("digits", "fashion-mnist") and config.space.in_chans == 3


def _timm_split_named(config: Config) -> bool:
    return config.data.dataset not in ("digits", "fashion-mnist", "cifar10", "cifar100")


#: Settings that do something for some configs only: (key, or section prefix ending in ".";
#: whether it applies to a config; why not).
_APPLIES_TO: tuple[tuple[str, Callable[[Config], bool], str], ...] = (
    ("data.data_dir", lambda c: c.data.dataset != "digits", "digits is bundled with scikit-learn and reads no directory"),
    ("data.download", lambda c: c.data.dataset in ("cifar10", "cifar100") or c.data.dataset.startswith("torch/"),
     "only cifar10, cifar100 and torch/ sets are downloaded"),
    ("data.train_split", _timm_split_named, "only folder, torch/, hfds/ and wds/ sets have named splits"),
    ("data.test_split", _timm_split_named, "only folder, torch/, hfds/ and wds/ sets have named splits"),
    ("data.digits_test_fraction", lambda c: c.data.dataset == "digits",
     "only digits ships without a test split to cut"),
    ("train.randaugment", _rgb_augmented, "RandAugment runs on RGB data only (in_chans 3, not digits or fashion-mnist)"),
    ("train.random_erasing", _rgb_augmented,
     "random erasing runs on RGB data only (in_chans 3, not digits or fashion-mnist)"),
    ("focus.", lambda c: c.train.sampler == "focus", "focus settings are for the focus sampler only"),
    ("train.model_ema_decay", lambda c: c.train.model_ema, "it is the decay of train.model_ema, which is off"),
    ("attentive.", lambda c: c.train.sampler == "attentive", "attentive settings are for the attentive sampler only"),
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
    sections = [f.name for f in fields(Config)]
    if section not in sections:
        raise ConfigError(
            f"override {dotted_key!r}: unknown section {section!r}; allowed: {', '.join(sections)}"
        )
    target = data.setdefault(section, {})
    if not isinstance(target, dict):
        raise ConfigError(f"override {dotted_key!r}: section {section!r} is not a mapping")
    target[name] = value
