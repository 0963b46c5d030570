"""README.md stays true: its test command is the one CI runs, its config example is valid."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest
import yaml

from focusformer.config import Config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


DOCS = sorted((ROOT / "docs").glob("*.md"))


def _bash_blocks() -> list[str]:
    """The bash blocks of README.md and of every docs/ page."""
    texts = [README] + [page.read_text() for page in DOCS]
    return [block for text in texts for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)]


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    setup = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = [block.strip() for block in re.findall(r"```bash\n(.*?)```", setup, flags=re.S)]
    assert len(commands) == 2
    install_and_train, install_and_test = commands
    assert "focusformer-train" in install_and_train and "pytest" in install_and_test
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci_lines
    # CI also runs the first command as a newcomer does: a non-editable install, then the main job.
    assert any(line.startswith(install_and_train) for line in ci_lines)
    assert "pip install ." in install_and_train and "-e" not in install_and_train.split()


CONFIGS_PAGE = (ROOT / "docs" / "configs.md").read_text()


def test_readme_opens_in_ten_lines_then_sets_up():
    """The opening (title to first heading) is at most ten lines, and the first command is the install."""
    opening = README.split("\n## ", 1)[0].splitlines()[1:]
    assert 0 < len([line for line in opening if line.strip()]) <= 10
    first_block = re.findall(r"```bash\n(.*?)```", README, flags=re.S)[0].strip()
    assert first_block.startswith("python3 -m venv .venv && .venv/bin/pip install .")


def test_readme_commands_continue_from_the_setup_run():
    """Every README command that reads a run reads the one the first set-up command trained."""
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    setup = shlex.split(blocks[0].strip().split("&&")[-1])
    trained = setup[setup.index("--output") + 1]
    reads = []
    for block in blocks[1:]:
        for line in block.splitlines():
            argv = shlex.split(line.split("  #")[0])
            if argv and argv[0].startswith("focusformer-"):
                reads += [argv[i + 1] for i, flag in enumerate(argv) if flag in ("--checkpoint", "--space")]
                if argv[0] == "focusformer-plot":
                    reads.append(argv[1])
    assert len(reads) >= 4 and set(reads) == {trained}, reads


def test_docs_config_example_is_a_valid_config():
    block = re.search(r"```yaml\n(.*?)```", CONFIGS_PAGE, flags=re.S).group(1)
    config = Config.from_dict(yaml.safe_load(block), where="")
    assert config.space.name == "fashion-mnist" and config.data.search_val_size == 5000


def test_docs_list_every_shipped_config():
    """The --config row of focusformer-train's flags (docs/training.md) names every shipped config."""
    from focusformer.config import shipped_configs

    training = (ROOT / "docs" / "training.md").read_text()
    row = next(line for line in training.splitlines() if line.startswith("| `--config"))
    for name in shipped_configs():
        assert f"`{name}`" in row


def test_every_readme_command_line_parses():
    """Each ``focusformer-*`` line of README's bash blocks is accepted by that command's parser."""
    lines = [line.split("  #")[0].strip() for block in _bash_blocks() for line in block.splitlines()]
    commands = [shlex.split(line) for line in lines if line.startswith("focusformer-")]
    assert {argv[0] for argv in commands} >= {"focusformer-train", "focusformer-specialize", "focusformer-search",
                                               "focusformer-plot", "focusformer-export", "focusformer-latency"}
    for argv in commands:
        module = importlib.import_module(f"focusformer.cli.{argv[0].removeprefix('focusformer-')}")
        module.build_parser().parse_args(argv[1:])  # a usage error exits, failing the test


def _console_scripts() -> dict[str, str]:
    """The package's commands as installed: name -> module."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value.split(":")[0] for ep in entry_points(group="console_scripts")
            if ep.value.startswith("focusformer.")}


def test_every_command_and_subcommand_renders_its_help(capsys):
    """``--help`` of every installed command (and of each subcommand) prints and exits 0: argparse
    formats help text only when asked, so a stray ``%`` in it fails nowhere else."""
    scripts = _console_scripts()
    assert {"focusformer-train", "focusformer-specialize", "focusformer-plot"} <= set(scripts)
    for name, module_name in scripts.items():
        module = importlib.import_module(module_name)
        subcommands = [choice for action in module.build_parser()._actions
                       if isinstance(action, argparse._SubParsersAction) for choice in action.choices]
        for argv in (["--help"], *([sub, "--help"] for sub in subcommands)):
            with pytest.raises(SystemExit) as exit_info:
                module.main(argv)
            assert exit_info.value.code == 0, (name, argv)
            assert capsys.readouterr().out.startswith("usage: "), (name, argv)


@pytest.mark.parametrize("page", ["README.md", *(f"docs/{page.name}" for page in DOCS)])
def test_commands_typed_in_order_export_nowhere_twice(page):
    """A second export into a folder an earlier command of the same page filled would be refused."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / page).read_text(), flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    targets = []
    for argv in (shlex.split(line) for line in lines if line.startswith("focusformer-")):
        if "--export" in argv and "--overwrite" not in argv:
            folder = argv[argv.index("--export") + 1].rstrip("/")
            budgets = argv[argv.index("--budgets") + 1].split(",") if "--budgets" in argv else []
            targets += [f"{folder}/{budget}" for budget in budgets] or [folder]
    assert len(targets) == len(set(targets)), targets
    if page == "README.md":
        assert targets


def test_readme_deploys_in_two_commands():
    """latency build, then specialize with a latency budget on that table, exported as ONNX."""
    block = next(b for b in _bash_blocks() if "focusformer-latency build" in b)
    build, specialize = (shlex.split(line) for line in block.strip().splitlines())
    lut = build[build.index("--output") + 1]
    assert build[:2] == ["focusformer-latency", "build"]
    assert specialize[0] == "focusformer-specialize" and "--latency" in specialize
    assert specialize[specialize.index("--lut") + 1] == lut
    assert specialize[specialize.index("--format") + 1] == "onnx" and "--export" in specialize
    assert build[build.index("--space") + 1] == specialize[specialize.index("--checkpoint") + 1]



def _github_slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


BENCHMARKS = ROOT / "benchmarks"
RESULTS = BENCHMARKS / "RESULTS.md"
REPORT = sorted((BENCHMARKS / "report").glob("*.md"))
STUDY_NOTES = sorted((BENCHMARKS / "studies").glob("*/NOTE.md"))


def _anchors(page: Path) -> set[str]:
    return {_github_slug(h) for h in re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M)}


def test_results_claims_reach_their_report_sections():
    """Every link of RESULTS.md's claims table reaches a report page's heading; every page is linked."""
    results = RESULTS.read_text()
    claims = results.split("## Current claims", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in claims.splitlines() if line.startswith("|") and not line.startswith("|---")][1:]
    assert len(rows) >= 8
    for row in rows:
        links = re.findall(r"\]\(([^)\s]+)\)", row)
        assert links, row
        for target in links:
            path, _, anchor = target.partition("#")
            page = (RESULTS.parent / path).resolve()
            assert page.is_file() and page.parent == (BENCHMARKS / "report").resolve(), target
            assert anchor in _anchors(page), target
    linked = {(RESULTS.parent / target.partition("#")[0]).resolve()
              for target in re.findall(r"\]\(([^)\s]+)\)", results)}
    assert REPORT and {page.resolve() for page in REPORT} <= linked


def test_every_relative_link_in_readme_and_docs_resolves():
    """Links to files (and to headings of Markdown files) from README.md, docs/, benchmarks/RESULTS.md,
    the report pages, benchmarks/README.md and the frozen studies' notes reach something."""
    checked = 0
    pages = [ROOT / "README.md", *DOCS, RESULTS, *REPORT, BENCHMARKS / "README.md", *STUDY_NOTES]
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # http(s):, mailto:
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            assert resolved.exists(), f"{page.name}: {target}"
            if anchor and resolved.suffix == ".md":
                assert anchor in _anchors(resolved), f"{page.name}: {target}"
            checked += 1
    assert checked >= len(DOCS) * 2
