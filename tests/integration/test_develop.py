"""`scripts/develop`: the Home Assistant configuration it writes keeps what the UI's editors save."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from homeassistant.const import __version__ as HA_VERSION
from homeassistant.util.yaml import load_yaml_dict

REPO = Path(__file__).parents[2]


def test_the_develop_configuration_loads_automations_saved_in_the_ui(tmp_path: Path) -> None:
    line = ".".join(HA_VERSION.split(".")[:2])  # the environment this test runs in: built already
    env = {**os.environ, "OPENUSAGE_HA_DEVELOP_DIR": str(tmp_path), "OPENUSAGE_HA_LINE": line}
    result = subprocess.run([REPO / "scripts" / "develop", "--prepare"], capture_output=True, text=True, env=env,
                            check=False, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr
    config_dir = tmp_path / "config"
    # An automation saved in the UI goes to automations.yaml; the configuration must include it.
    (config_dir / "automations.yaml").write_text("- id: '1'\n  alias: Saved in the UI\n  triggers: []\n  actions: []\n")
    config = load_yaml_dict(config_dir / "configuration.yaml")
    assert config["automation"][0]["alias"] == "Saved in the UI"
    assert config["script"] == {}
    assert config["scene"] == []
    assert (tmp_path / "state" / "openusage" / "telemetry.db").stat().st_size > 0
