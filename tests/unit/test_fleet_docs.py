"""docs/fleet.md stays true: every sync.yaml on it validates (and maps the remote folders as
the page says), the compose and Kubernetes examples are valid YAML that mount what the image
reads, and every ``syncagent`` command line parses with the real command-line interface."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from syncagent.cli import main
from syncagent.config import validate
from syncagent.host import mapped_root

DOC = Path(__file__).resolve().parents[2] / "docs" / "fleet.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)
ENV = {
    "SYNCAGENT_DB_PASSWORD": "pw",
    "HOSTNAME": "nas-a",
    "SYNCAGENT_LEDGER_URL": "postgresql+psycopg://u:pw@db/syncagent",
    "NODE_NAME": "node-1",
}


def _blocks(kind: str) -> list[str]:
    return [body for lang, body in FENCE.findall(DOC.read_text(encoding="utf-8")) if lang == kind]


def _sync_yamls() -> list[dict[str, Any]]:
    docs = [yaml.safe_load(b) for b in _blocks("yaml")]
    return [d for d in docs if isinstance(d, dict) and "roots" in d]


def test_the_page_has_what_it_promises() -> None:
    assert len(_sync_yamls()) == 2
    assert len(_blocks("sh")) >= 3


@pytest.mark.parametrize("index", [0, 1])
def test_each_sync_yaml_validates_and_maps_per_host(tmp_path: Path, index: int) -> None:
    raw = _sync_yamls()[index]
    documented = [r["remote"] for r in raw["roots"]]
    for n, root in enumerate(raw["roots"]):  # the page's folders, made here
        (tmp_path / f"r{n}").mkdir()
        root["local"] = str(tmp_path / f"r{n}")
    if "credentials" in raw:
        secrets = tmp_path / "secrets.yaml"
        secrets.write_text("client_id: cid\nclient_secret: s3cret\n", encoding="utf-8")
        raw["credentials"]["secrets_file"] = str(secrets)
    raw["state_dir"] = str(tmp_path / "state")
    config = validate(raw, ENV)
    assert config.ledger_url.startswith("postgresql+psycopg://")
    assert config.fleet_host in ("nas-a", "node-1")
    assert config.fleet_shared == "auto"
    remotes = [mapped_root(r, config.fleet_host or "", True, None) for r in config.roots]
    expected = {
        "/syncagent/data": f"/syncagent/{config.fleet_host}/data",
        "/team/docs": "/team/docs",  # shared_remote: true
    }
    assert remotes == [expected[d] for d in documented]


def test_compose_and_daemonset_mount_what_the_image_reads() -> None:
    docs = [yaml.safe_load(b) for b in _blocks("yaml")]
    (compose,) = [d for d in docs if isinstance(d, dict) and "services" in d]
    service = compose["services"]["syncagent"]
    assert any(v.endswith(":/config/sync.yaml:ro") for v in service["volumes"])
    assert any(v.startswith("syncagent-state:/state") for v in service["volumes"])
    assert {"SYNCAGENT_LEDGER_URL", "NODE_NAME"} <= set(service["environment"])
    (daemonset,) = [d for d in docs if isinstance(d, dict) and d.get("kind") == "DaemonSet"]
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    names = {e["name"] for e in container["env"]}
    assert {"NODE_NAME", "SYNCAGENT_LEDGER_URL", "PAN123_CLIENT_ID"} <= names
    assert "PAN123_CLIENT_SECRET" in names
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/data", "/state", "/config"}


def test_every_command_line_parses() -> None:
    lines = [
        line.strip()
        for block in _blocks("sh")
        for line in block.splitlines()
        if line.strip().startswith("syncagent ")
    ]
    assert len(lines) >= 4
    for line in lines:
        args = shlex.split(line)[1:]
        command: click.Command = main
        while isinstance(command, click.Group):
            sub = command.get_command(click.Context(command), args[0])
            assert sub is not None, line
            command, args = sub, args[1:]
        command.make_context(command.name, list(args))  # raises on an unknown option
