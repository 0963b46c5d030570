"""README.md stays true: its test command is the one CI runs, its config example is valid."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from focusformer.config import Config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    setup = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = [block.strip() for block in re.findall(r"```bash\n(.*?)```", setup, flags=re.S)]
    assert len(commands) == 2
    install_and_train, install_and_test = commands
    assert "focusformer-train" in install_and_train and "pytest" in install_and_test
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert install_and_test in ci_lines


def test_readme_config_example_is_a_valid_config():
    block = re.search(r"```yaml\n(.*?)```", README, flags=re.S).group(1)
    config = Config.from_dict(yaml.safe_load(block), where="")
    assert config.space.name == "fashion-mnist" and config.data.search_val_size == 5000


def test_readme_lists_every_shipped_config():
    from focusformer.config import shipped_configs

    for name in shipped_configs():
        assert f"`{name}`" in README
