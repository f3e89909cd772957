"""The deployment examples (deploy/) are examples, not run here; what can be checked is that they
parse and that the settings they give qabot are settings qabot accepts, with the backends the
docs say (Milvus, Redis, two replicas behind the proxy), and that they
hold what a real deployment needs (docs/deploy.md)."""

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


# --- what a real deployment needs of the examples ----------------------------------------------

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
QABOT_SERVICES = ("ingest", "qabot-1", "qabot-2")


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _k8s() -> dict[tuple[str, str], dict]:
    documents = yaml.safe_load_all((DEPLOY / "k8s" / "qabot.yaml").read_text())
    return {(d["kind"], d["metadata"]["name"]): d for d in documents}


def _registry_reference(image: str) -> bool:
    """`host.domain/path/name:tag`, a tag other than latest: pullable from a registry, and every
    pod runs the same build."""
    image = image.split(":-", 1)[-1].rstrip("}")  # ${DEPLOY_IMAGE:-default} -> default
    host, _, rest = image.partition("/")
    name, _, tag = rest.rpartition(":")
    return "." in host and bool(name) and tag not in ("", "latest")


def _redis_persists(args: list[str], mounts: list[str]) -> bool:
    """Append-only on, into a directory that is a mounted volume."""
    appendonly = args[args.index("--appendonly") + 1] == "yes" if "--appendonly" in args else False
    directory = args[args.index("--dir") + 1] if "--dir" in args else "/data"
    return appendonly and directory in mounts


def test_compose_builds_one_image_once_with_cpu_torch_and_pulls_it_by_registry_reference():
    services = _compose()["services"]
    images = {services[name]["image"] for name in QABOT_SERVICES}
    assert len(images) == 1 and _registry_reference(images.pop())
    assert all(services[name].get("pull_policy") for name in QABOT_SERVICES)
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["ingest"], builders  # one build, not one per replica
    build = services["ingest"]["build"]
    assert build["args"]["TORCH_INDEX"] == CPU_INDEX
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv/" in ignored and ".git/" in ignored  # the build context stays small


def test_compose_replicas_wait_for_the_ingest_and_may_write_the_index():
    services = _compose()["services"]
    for name in ("qabot-1", "qabot-2"):
        assert services[name]["depends_on"]["ingest"] == {"condition": "service_completed_successfully"}
    for name in QABOT_SERVICES:
        index_mounts = [v for v in services[name]["volumes"] if v.startswith("qabot-index:")]
        assert index_mounts and not any(v.endswith(":ro") for v in index_mounts), index_mounts


def test_compose_redis_keeps_its_append_only_file_on_a_volume():
    compose = _compose()
    redis = compose["services"]["redis"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in redis["volumes"]}
    assert _redis_persists(redis["command"], list(mounts))
    assert all(name in compose["volumes"] for name in mounts.values())  # named volumes, not the container's layer


def test_the_dockerfile_installs_cpu_torch_first_from_the_cpu_index_by_default():
    text = (DEPLOY / "Dockerfile").read_text()
    assert f"ARG TORCH_INDEX={CPU_INDEX}" in text
    torch_line = next(i for i, line in enumerate(text.splitlines()) if '"torch==2.13.0"' in line)
    qabot_line = next(i for i, line in enumerate(text.splitlines()) if '".[scale]"' in line)
    assert torch_line < qabot_line
    assert '--index-url "$TORCH_INDEX"' in text and "'+cu' not in v" in text
    assert "--constraint" in text.splitlines()[qabot_line]  # pip may not swap torch afterwards
    # The model cache is made at build time, after qabot is installed, with the settings' encoder.
    cache_line = next(i for i, line in enumerate(text.splitlines()) if "get_encoder('onnx', 256)" in line)
    assert cache_line > qabot_line
    model = load_settings(ROOT / "config" / "default.toml", environ={}).model
    assert (model.query_backend, model.max_seq_length) == ("onnx", 256)


def _containers(spec: dict) -> list[dict]:
    return spec.get("initContainers", []) + spec["containers"]


def test_kubernetes_pods_pull_a_registry_image_by_policy():
    named = _k8s()
    pods = [named["Job", "qabot-ingest"]["spec"]["template"]["spec"],
            named["Deployment", "qabot"]["spec"]["template"]["spec"]]
    qabot_containers = [c for pod in pods for c in _containers(pod)]
    assert len(qabot_containers) == 3
    assert len({c["image"] for c in qabot_containers}) == 1
    for container in qabot_containers:
        assert _registry_reference(container["image"]) and container["imagePullPolicy"] == "IfNotPresent"


def test_kubernetes_replicas_wait_for_the_index_and_mount_it_writable():
    named = _k8s()
    pod = named["Deployment", "qabot"]["spec"]["template"]["spec"]
    wait = pod["initContainers"][0]
    assert "qabot docs list" in " ".join(wait["command"])  # fails until the Job wrote an index
    assert any(m["name"] == "index" for m in wait["volumeMounts"])
    serve = pod["containers"][0]
    index_mount = next(m for m in serve["volumeMounts"] if m["name"] == "index")
    assert not index_mount.get("readOnly", False)
    assert named["PersistentVolumeClaim", "qabot-index"]["spec"]["accessModes"] == ["ReadWriteMany"]


def test_kubernetes_redis_keeps_its_append_only_file_on_a_volume():
    named = _k8s()
    redis = named["StatefulSet", "qabot-redis"]["spec"]
    container = redis["template"]["spec"]["containers"][0]
    claims = {c["metadata"]["name"] for c in redis["volumeClaimTemplates"]}
    mounts = [m["mountPath"] for m in container["volumeMounts"] if m["name"] in claims]
    assert _redis_persists(container["args"], mounts)
