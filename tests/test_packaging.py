"""The image and the compose file start what the README says, with a configuration Sorte accepts."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest
import yaml

from sorte.config import OLLAMA_MODELS, REPO_ROOT, load_settings
from sorte.web.edges import allowed_hosts, check_host


def test_the_image_runs_sorte_up() -> None:
    lines = (REPO_ROOT / "Dockerfile").read_text().splitlines()
    assert lines[-2:] == ['ENTRYPOINT ["sorte"]', 'CMD ["up"]']
    assert any("'.[llm]'" in line for line in lines), "the embedded model's backend is in the image"


def test_compose_adds_ollama_with_the_reference_models_and_a_valid_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose = yaml.safe_load((REPO_ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"ollama", "models", "sorte"} <= set(services)
    pulled = " ".join(services["models"]["command"])
    assert all(model in pulled for model in OLLAMA_MODELS.values())
    sorte = services["sorte"]
    assert sorte["command"] == ["up"] and sorte["ports"] == ["127.0.0.1:8090:8090"]
    [mount] = sorte["configs"]
    assert sorte["environment"]["SORTE_CONFIG"] == mount["target"]
    config = tmp_path / "sorte.yaml"
    config.write_text(compose["configs"][mount["source"]]["content"])
    for key in [k for k in os.environ if k.startswith("SORTE_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(config)
    assert settings.llm.profile == "ollama" and settings.llm.providers["ollama"].base_url == "http://ollama:11434"
    chain = [target.provider for target in settings.llm.role("coder").chain]
    assert chain == ["ollama", "llamacpp"], json.dumps(chain)


def _image_env() -> dict[str, str]:
    """The ENV instructions of the Dockerfile, read with the shell-like quoting Docker applies."""
    text = (REPO_ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(word.split("=", 1) for word in shlex.split(line[4:]))
    return env


def test_the_image_page_answers_the_names_its_published_port_is_opened_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The image binds 0.0.0.0, which refuses every Host not listed: its defaults must list the
    loopback names the compose file publishes the port on, and nothing else."""
    for key in [k for k in os.environ if k.startswith("SORTE_")]:
        monkeypatch.delenv(key)
    env = _image_env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    web = load_settings(None).web
    assert web.host == "0.0.0.0"
    allowed = allowed_hosts(web)
    for host in ("127.0.0.1:8090", "localhost:8090"):
        assert check_host({"headers": [(b"host", host.encode())]}, allowed) is None, host
    assert check_host({"headers": [(b"host", b"attacker.example")]}, allowed) is not None
