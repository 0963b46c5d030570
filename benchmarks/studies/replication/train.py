"""The replication study's supernets: the frozen studies' kept figures, trained again on main.

The frozen studies ran scripts that no longer run on main; this study measures their kept claims
again with the package's own commands and the maintained evaluation, three seeds each (0-2; the
originals had two), one process of one thread per run, resumable:

* the families at matched MACs, and which spaces have a wide cloud (5 epochs, uniform sampling):
  ``autoformer5`` (``fashion-mnist``), ``vitas5``, ``psvit1d5``, ``psvit2d5``, ``wide5``;
* what ViTAS's two mechanisms cost (5 epochs, uniform): ``vitas5patch4`` (one patch size, 4) and
  ``vitas5noidentity`` (no identity layers), each against ``vitas5``;
* attentive sampling at equal compute (an attentive step costs about 2.3 uniform ones):
  ``vattentive8`` (``vitas-fashion-mnist``, 8 epochs) and ``aattentive7`` (``fashion-mnist``, 7
  epochs), against the currencies study's uniform runs of 16 epochs.

Retraining specialize's picks and the ranking benchmark reuse the currencies study's supernets
(``retrain.py`` and ``NOTE.md``). Runs go to ROOT/<arm>-s<seed>; a run whose figures the study
already records (``record.py``) is not trained again. Run from the repository root:

    python -m benchmarks.studies.replication.train ROOT [--arms autoformer5,vitas5] [--lanes 2]
"""

from __future__ import annotations

from benchmarks.lib.jobs import train_study
from benchmarks.studies.replication import record

VITAS = ["--config", "vitas-fashion-mnist"]
FIVE_UNIFORM = ["--epochs", "5", "--sampler", "uniform"]
ARMS = {
    "autoformer5": ["--config", "fashion-mnist", *FIVE_UNIFORM],
    "vitas5": [*VITAS, *FIVE_UNIFORM],
    "psvit1d5": ["--config", "psvit-1d-fashion-mnist", *FIVE_UNIFORM],
    "psvit2d5": ["--config", "psvit-2d-fashion-mnist", *FIVE_UNIFORM],
    "wide5": ["--config", "wide-fashion-mnist", *FIVE_UNIFORM],
    "vitas5patch4": [*VITAS, *FIVE_UNIFORM, "--set", "space.patch_size=[4]"],
    "vitas5noidentity": [*VITAS, *FIVE_UNIFORM, "--set", "space.identity=false"],
    "vattentive8": [*VITAS, "--sampler", "attentive", "--epochs", "8"],
    "aattentive7": ["--config", "fashion-mnist", "--sampler", "attentive", "--epochs", "7"],
}
SEEDS = (0, 1, 2)


def main(argv: list[str] | None = None) -> None:
    train_study(__doc__.splitlines()[0], ARMS, SEEDS, argv,
                kept=lambda arm, seed: (record.RECORDS / f"{arm}-s{seed}.json").is_file())


if __name__ == "__main__":
    main()
