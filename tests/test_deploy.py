"""The deployment examples (deploy/) are examples, not run here; what can be checked is that they
parse and that the settings they give qabot are settings qabot accepts, with the backends the
README says (Milvus, Redis, two replicas behind the proxy)."""

from __future__ import annotations

import yaml

from bot.settings import load_settings

from .conftest import ROOT

DEPLOY = ROOT / "deploy"


def _qabot_env(mapping: dict) -> dict[str, str]:
    return {k: str(v) for k, v in mapping.items() if k.startswith("QABOT_") and k != "QABOT_CONFIG"}


def test_the_compose_example_runs_two_replicas_on_milvus_and_redis_behind_the_proxy():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"milvus", "redis", "proxy", "qabot-1", "qabot-2", "ingest"} <= set(services)
    for name in ("qabot-1", "qabot-2", "ingest"):
        settings = load_settings(environ=_qabot_env(services[name]["environment"]))
        assert (settings.store.store_backend, settings.state.state_backend) == ("milvus", "redis")
        assert settings.store.store_uri == "http://milvus:19530"
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "server qabot-1:3000" in nginx and "server qabot-2:3000" in nginx


def test_the_kubernetes_example_gives_qabot_valid_settings():
    documents = list(yaml.safe_load_all((DEPLOY / "k8s" / "qabot.yaml").read_text()))
    named = {(d["kind"], d["metadata"]["name"]): d for d in documents}
    settings = load_settings(environ=_qabot_env(named["ConfigMap", "qabot"]["data"]))
    assert (settings.store.store_backend, settings.state.state_backend) == ("milvus", "redis")
    assert named["Deployment", "qabot"]["spec"]["replicas"] == 2
