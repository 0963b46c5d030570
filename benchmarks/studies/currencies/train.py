"""The training runs of the currencies study: what focus saves in supernet epochs and in search time.

Arms (each seeds 0-2, one process of one thread per run, resumable):

* ``vitas-fashion-mnist`` (its config: focus with ``reward: loss``): ``vfocus15`` (focus, 15
  epochs), ``vuniform16``, ``vuniform24``, ``vuniform32`` (uniform sampling, 16 / 24 / 32 epochs);
* ``fashion-mnist`` (AutoFormer's space): ``afocusloss15`` and ``afocusdistill15`` (focus with
  ``reward: loss`` / ``distill``, 15 epochs), ``auniform16`` (uniform, 16 epochs: equal compute).

Runs go to ROOT/<arm>-s<seed>; run from the repository root:

    python -m benchmarks.studies.currencies.train ROOT [--arms vfocus15,vuniform16] [--lanes 2]
"""

from __future__ import annotations

from benchmarks.lib.jobs import train_study

VITAS = ["--config", "vitas-fashion-mnist"]
AUTOFORMER = ["--config", "fashion-mnist"]
ARMS = {
    "vfocus15": [*VITAS, "--sampler", "focus", "--epochs", "15"],
    "vuniform16": [*VITAS, "--sampler", "uniform", "--epochs", "16"],
    "vuniform24": [*VITAS, "--sampler", "uniform", "--epochs", "24"],
    "vuniform32": [*VITAS, "--sampler", "uniform", "--epochs", "32"],
    "afocusloss15": [*AUTOFORMER, "--sampler", "focus", "--set", "focus.reward=loss", "--epochs", "15"],
    "afocusdistill15": [*AUTOFORMER, "--sampler", "focus", "--set", "focus.reward=distill", "--epochs", "15"],
    "auniform16": [*AUTOFORMER, "--sampler", "uniform", "--epochs", "16"],
}
SEEDS = (0, 1, 2)


def main(argv: list[str] | None = None) -> None:
    train_study(__doc__.splitlines()[0], ARMS, SEEDS, argv)


if __name__ == "__main__":
    main()
