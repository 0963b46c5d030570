"""Bad input to every command: a one-line error naming the problem, exit code 2, no traceback,
and no existing file changed. docs/errors.md lists these cases (its table)."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from latency_checks import synthetic_table

from focusformer.cli import export as export_cli
from focusformer.cli import latency as latency_cli
from focusformer.cli import plot as plot_cli
from focusformer.cli import search as search_cli
from focusformer.cli import specialize as specialize_cli
from focusformer.cli import train as train_cli
from focusformer.config import load_config, resolve_config_path
from focusformer.training.trainer import Trainer

COMMANDS = {"train": train_cli, "specialize": specialize_cli, "search": search_cli, "export": export_cli,
            "plot": plot_cli, "latency": latency_cli}

# (case id, command, arguments, what the message must say). {focus}, {uniform}, {tmp}, {fmnist},
# {bad_yaml}, {export}, {arch_bad_json}, {arch_outside}, {file}, {lut}, {vitas_lut} and {own_config}
# (a directory holding the user's own config.yaml) are filled in below.
CASES = [
    ("config-missing", "train", ["--config", "{tmp}/nope.yaml"], "no such config file"),
    ("config-unknown-name", "train", ["--config", "imagenet-huge"], "shipped:"),
    ("config-bad-yaml", "train", ["--config", "{bad_yaml}"], "not valid YAML (line 2, column 1"),
    ("config-unknown-key", "train", ["--set", "train.epochz=3"], "unknown key 'epochz'"),
    ("config-wrong-type", "train", ["--set", "train.epochs=ten"], "expected an integer"),
    ("config-not-allowed", "train", ["--set", "data.dataset=mnist"], "choose one of"),
    ("space-patch-size", "train", ["--set", "space.patch_size=3"], "does not divide image_size 8"),
    ("space-empty-choices", "train", ["--set", "space.depth=[]"], "needs at least one choice"),
    ("space-negative-choice", "train", ["--set", "space.embed_dim=[-24]"], "must be positive"),
    ("epochs-zero", "train", ["--epochs", "0"], "expected a positive integer"),
    ("lr-negative", "train", ["--lr", "-1"], "expected a positive number"),
    ("batch-size-text", "train", ["--batch-size", "abc"], "expected a positive integer"),
    ("override-syntax", "train", ["--set", "train.epochs"], "SECTION.KEY=VALUE"),
    ("override-section", "train", ["--set", "model.depth=3"], "unknown section 'model'"),
    ("checkpoint-every-negative", "train", ["--checkpoint-every", "-1"], "must be 0 or more"),
    ("data-dir-missing", "train", ["--config", "fashion-mnist", "--data-dir", "{tmp}/no-data"], "{tmp}/no-data"),
    ("data-dir-empty", "train", ["--config", "fashion-mnist", "--data-dir", "{tmp}"], "train-images-idx3-ubyte.gz"),
    ("data-size-mismatch", "train", ["--config", "fashion-mnist", "--data-dir", "{fmnist}",
                                     "--set", "space.image_size=32"], "28x28"),
    ("batch-larger-than-data", "train", ["--batch-size", "5000"], "fewer than train.batch_size"),
    ("output-holds-run", "train", ["--output", "{uniform}"], "pass --resume"),
    ("output-under-a-file", "train", ["--output", "{file}/run"], "is a file, not a directory"),
    ("resume-missing", "train", ["--resume", "{tmp}/gone"], "no checkpoint here"),
    ("resume-corrupt", "train", ["--resume", "{corrupt}"], "truncated or corrupt"),
    ("resume-empty-checkpoint", "train", ["--resume", "{empty_checkpoint}"],
     "truncated or corrupt checkpoint (EOFError"),
    ("checkpoint-not-a-checkpoint", "specialize", ["--checkpoint", "{uniform}/config.yaml", "--budget", "300K"],
     "truncated or corrupt checkpoint"),
    ("config-not-text", "train", ["--config", "{uniform}/last.pt"], "not a YAML file (not text)"),
    ("lut-space-not-text", "latency", ["build", "--space", "{uniform}/last.pt", "--output", "{tmp}/lut.json"],
     "not a YAML file (not text)"),
    ("resume-with-config-flags", "train", ["--resume", "{uniform}", "--lr", "0.1"], "reuses the run's own config"),
    ("budget-below-range", "specialize", ["--checkpoint", "{focus}", "--budget", "1K"], "below this space's range"),
    ("budgets-one-below-range", "specialize", ["--checkpoint", "{focus}", "--budgets", "1T,1K"],
     "budget 1K MACs is below this space's range"),
    ("budget-unparseable", "specialize", ["--checkpoint", "{focus}", "--budget", "lots"], "not a number"),
    ("budget-zero", "specialize", ["--checkpoint", "{focus}", "--budget", "0"], "must be a positive number"),
    ("budget-list-bad", "specialize", ["--checkpoint", "{focus}", "--budgets", "300K,x"], "not a number"),
    ("params-unparseable", "specialize", ["--checkpoint", "{focus}", "--params", "6X"], "not a number"),
    ("checkpoint-missing", "specialize", ["--checkpoint", "{tmp}/gone", "--budget", "300K"], "no checkpoint here"),
    ("no-trained-sampler", "specialize", ["--checkpoint", "{uniform}", "--budget", "300K"], "no learned sampler"),
    ("candidates-zero", "specialize", ["--checkpoint", "{focus}", "--budget", "300K", "--candidates", "0"],
     "expected a positive integer"),
    ("export-would-overwrite", "specialize", ["--checkpoint", "{focus}", "--budget", "300K", "--export", "{export}"],
     "pass --overwrite"),
    ("export-budget-folder-holds-export", "specialize", ["--checkpoint", "{focus}", "--budgets", "300K,500K",
                                                         "--export", "{multi_export}"], "500K already holds README.md"),
    ("export-not-writable", "specialize", ["--checkpoint", "{focus}", "--budget", "300K", "--export", "/sys/export"],
     "is not writable"),
    ("mutation-probability", "search", ["--checkpoint", "{focus}", "--budget", "300K", "--depth-mutation", "2"],
     "depth_mutation"),
    ("population-zero", "search", ["--checkpoint", "{focus}", "--budget", "300K", "--population", "0"],
     "expected a positive integer"),
    ("parents-over-population", "search", ["--checkpoint", "{focus}", "--budget", "300K", "--population", "4",
                                            "--parents", "9"], "parents"),
    ("search-budget-range", "search", ["--checkpoint", "{focus}", "--budget", "10"], "below this space's range"),
    ("search-shorter-than-recorded", "search", ["--checkpoint", "{focus}", "--budget", "500K", "--method", "random",
                                                "--candidates", "2", "--no-test"],
     "this search has already run 4 candidates, more than the 2 asked for"),
    ("search-method", "search", ["--checkpoint", "{focus}", "--budget", "300K", "--method", "grid"],
     "invalid choice"),
    ("arch-file-missing", "export", ["--checkpoint", "{focus}", "--arch", "{tmp}/a.json", "--output", "{tmp}/o"],
     "no such file"),
    ("arch-file-bad-json", "export", ["--checkpoint", "{focus}", "--arch", "{arch_bad_json}", "--output", "{tmp}/o"],
     "not a readable JSON arch"),
    ("arch-outside-space", "export", ["--checkpoint", "{focus}", "--arch", "{arch_outside}", "--output", "{tmp}/o"],
     "not a choice of the space"),
    ("export-checkpoint-missing", "export", ["--checkpoint", "{tmp}/gone", "--largest", "--output", "{tmp}/o"],
     "no checkpoint here"),
    ("export-dir-holds-export", "export", ["--checkpoint", "{focus}", "--largest", "--output", "{export}"],
     "pass --overwrite"),
    ("plot-run-missing", "plot", ["{tmp}/gone", "--output", "{tmp}/f.png"], "not a run directory"),
    ("plot-format", "plot", ["{focus}", "--output", "{tmp}/f.gif"], "unsupported figure format"),
    ("plot-labels", "plot", ["{focus}", "{uniform}", "--labels", "a", "--output", "{tmp}/f.png"], "labels"),
    ("plot-cloud-zero", "plot", ["{focus}", "--cloud", "0", "--output", "{tmp}/f.png"], "at least 1"),
    # Flags that would do nothing for the config or command, refused rather than ignored (issue #13).
    ("data-dir-for-digits", "train", ["--data-dir", "{tmp}/no-data"],
     "--data-dir: digits is bundled with scikit-learn and reads no directory"),
    ("download-not-cifar", "train", ["--set", "data.download=true"], "only cifar10, cifar100 and torch/ sets are downloaded"),
    ("split-not-named", "train", ["--set", "data.test_split=test"], "only folder, torch/, hfds/ and wds/ sets have named splits"),
    ("rgb-augmentation-on-gray", "train", ["--set", "train.random_erasing=0.5"], "RGB data only"),
    ("focus-setting-not-focus", "train", ["--sampler", "uniform", "--set", "focus.band=0.2"],
     "for the focus sampler only"),
    ("overwrite-without-export", "specialize", ["--checkpoint", "{focus}", "--budget", "300K", "--overwrite"],
     "--overwrite applies only with --export"),
    ("format-without-export", "specialize", ["--checkpoint", "{focus}", "--budget", "300K", "--format", "onnx"],
     "--format applies only with --export"),
    ("lut-without-latency", "specialize", ["--checkpoint", "{focus}", "--budget", "300K", "--lut", "{lut}"],
     "--lut applies only with --latency"),
    ("evolution-flag-random-search", "search", ["--checkpoint", "{focus}", "--budget", "300K", "--method", "random",
                                                 "--population", "5"], "--population applies only with --method evolution"),
    ("candidates-evolution-search", "search", ["--checkpoint", "{focus}", "--budget", "300K", "--candidates", "20"],
     "--candidates applies only with --method random"),
    ("threads-on-cuda", "latency", ["build", "--space", "digits", "--device", "cuda", "--threads", "2", "--output",
                                    "{tmp}/lut.json"], "--threads applies only with --device cpu"),
    # Outputs that would land in a training run's directory or overwrite an input (issue #13).
    ("export-into-run", "export", ["--checkpoint", "{focus}", "--largest", "--output", "{focus}"],
     "is the training run"),
    ("export-inside-run", "export", ["--checkpoint", "{focus}", "--largest", "--output", "{focus}/largest"],
     "is inside the training run"),
    ("specialize-export-into-run", "specialize", ["--checkpoint", "{focus}", "--budget", "300K", "--export",
                                                  "{focus}"], "is the training run"),
    ("plot-into-run", "plot", ["{focus}", "--output", "{focus}/pareto.png"], "is inside the training run"),
    ("lut-into-run", "latency", ["build", "--space", "digits", "--output", "{uniform}/lut.json"],
     "is inside the training run"),
    ("lut-exists", "latency", ["build", "--space", "digits", "--output", "{lut}"], "pass --overwrite"),
    ("output-overwrites-config", "train", ["--config", "{own_config}/config.yaml", "--output", "{own_config}"],
     "would overwrite the --config file"),
    # Latency budgets.
    ("latency-without-lut", "specialize", ["--checkpoint", "{focus}", "--latency", "1ms"], "needs --lut"),
    ("latency-without-unit", "specialize", ["--checkpoint", "{focus}", "--latency", "2.5", "--lut", "{lut}"],
     "a number and a unit"),
    ("latency-below-range", "specialize", ["--checkpoint", "{focus}", "--latency", "1us", "--lut", "{lut}"],
     "below this space's range on its latency table"),
    ("lut-for-another-space", "specialize", ["--checkpoint", "{focus}", "--latency", "1ms", "--lut", "{vitas_lut}"],
     "was built for space 'vitas-digits'"),
    ("lut-missing", "search", ["--checkpoint", "{focus}", "--latency", "1ms", "--lut", "{tmp}/no.json"],
     "no such latency table"),
    ("lut-unknown-space", "latency", ["build", "--space", "{tmp}/nope.yaml", "--output", "{tmp}/lut.json"],
     "no such config file"),
]


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad-input")
    focus, uniform = root / "focus", root / "uniform"
    Trainer(load_config("digits", ["train.epochs=2", "train.batch_size=128", "focus.update_every=4",
                                   "focus.eval_images=32"]), focus, progress=False).fit()
    Trainer(load_config("digits", ["train.epochs=1", "train.sampler=uniform"]), uniform, progress=False).fit()
    fmnist = root / "fmnist"
    fmnist.mkdir()
    rng = np.random.default_rng(0)
    for split, n in (("train", 64), ("t10k", 16)):
        _write_idx(fmnist / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28)))
        _write_idx(fmnist / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    (root / "bad.yaml").write_text("space: [unclosed\n")
    (root / "corrupt").mkdir()
    (root / "corrupt" / "last.pt").write_bytes((uniform / "last.pt").read_bytes()[:500])
    (root / "multi" / "500K").mkdir(parents=True)
    (root / "multi" / "500K" / "README.md").write_text("the user's own")
    (root / "empty").mkdir()
    (root / "empty" / "last.pt").write_bytes(b"")
    export = root / "export"
    assert export_cli.main(["--checkpoint", str(focus), "--smallest", "--output", str(export)]) == 0
    assert search_cli.main(["--checkpoint", str(focus), "--budget", "500K", "--method", "random", "--candidates", "4",
                            "--no-test", "--no-progress"]) == 0  # a recorded search, for the state cases
    (root / "bad.json").write_text("{embed_dim: 24")
    (root / "outside.json").write_text('{"embed_dim": 25, "depth": 2, "num_heads": [3, 3], "mlp_ratio": [2, 2]}')
    (root / "a-file").write_text("not a directory")
    lut = synthetic_table(load_config("digits").space).save(root / "lut.json")
    vitas_lut = synthetic_table(load_config("vitas-digits").space).save(root / "vitas-lut.json")
    own_config = root / "own-config"
    own_config.mkdir()
    (own_config / "config.yaml").write_text(resolve_config_path("digits").read_text())
    return {"focus": str(focus), "uniform": str(uniform), "fmnist": str(fmnist), "bad_yaml": str(root / "bad.yaml"),
            "corrupt": str(root / "corrupt"), "empty_checkpoint": str(root / "empty"),
            "multi_export": str(root / "multi"), "export": str(export), "arch_bad_json": str(root / "bad.json"),
            "arch_outside": str(root / "outside.json"), "file": str(root / "a-file"), "lut": str(lut),
            "vitas_lut": str(vitas_lut), "own_config": str(own_config), "root": str(root)}


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case, command, argv, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, command, argv, message, places, tmp_path, capsys):
    fill = {**places, "tmp": str(tmp_path)}
    argv = [arg.format(**fill) for arg in argv]
    if command == "train" and "--resume" not in argv:
        argv += [] if "--output" in argv else ["--output", str(tmp_path / "new-run")]
        argv += ["--no-progress"]
    before = _snapshot(Path(places["root"]))
    try:
        code = COMMANDS[command].main(argv)
    except SystemExit as exc:  # argparse's own errors exit here, also with code 2
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    assert err.startswith(f"focusformer-{command}: error: ")
    assert message.format(**fill) in err, err
    assert _snapshot(Path(places["root"])) == before  # nothing changed, nothing added
    assert not (tmp_path / "new-run").exists()  # refused before training: the output is not even made


def test_docs_list_every_case():
    table = (Path(__file__).resolve().parents[1] / "docs" / "errors.md").read_text()
    listed = set(re.findall(r"^\| `([a-z0-9-]+)` \|", table, flags=re.M))
    assert listed == {case for case, *_ in CASES}
    assert len(CASES) >= 30


def test_train_overwrite_needs_an_output(tmp_path, capsys, monkeypatch):
    """Without --output a run goes to a new directory, so --overwrite would do nothing: refused."""
    monkeypatch.chdir(tmp_path)
    assert train_cli.main(["--overwrite", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("focusformer-train: error: --overwrite applies only with --output "
                   "(the default output is a new directory)")
    assert not (tmp_path / "runs").exists()
