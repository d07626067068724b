"""Checks of docker-compose.yml that need no Docker engine, each a function returning the
problems it finds (empty: fine), so a test can also feed it a broken copy and see it fail.

The compose file is read as Compose reads it: YAML merge keys applied, then ``${VAR:-default}``
replaced by its default (as with no variable set), which is what a plain `docker compose up`
runs.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = Path(__file__).parent / "data" / "compose-spec.json"
CLICKHOUSE_NATIVE_PORT = 9000
CLICKHOUSE_HTTP_PORT = 8123
"""The ClickHouse server image's default listening ports (native protocol, HTTP)."""
# Compose's ${VAR:-default}, and the collector's ${env:VAR:-default}
_VARIABLE = re.compile(r"\$\{(?:env:)?(\w+)(?::?[-?]([^}]*))?\}")

Problems = list[str]


def interpolate(value: Any) -> Any:
    """``value`` with every ``${VAR:-default}`` replaced by its default (``""`` if none)."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: match.group(2) or "", value)
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    return value


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The compose file as Compose runs it with no variables set."""
    loaded: dict[str, Any] = interpolate(yaml.safe_load(path.read_text()))
    return loaded


def load_yaml(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose.get("services", {})
    return found


def port_of(endpoint: str) -> int:
    """The port of ``host:port`` or of a URL."""
    if "//" not in endpoint:
        endpoint = f"tcp://{endpoint}"
    port = urlsplit(endpoint).port
    assert port is not None, endpoint
    return port


def host_of(endpoint: str) -> str:
    if "//" not in endpoint:
        endpoint = f"tcp://{endpoint}"
    return urlsplit(endpoint).hostname or ""


def container_ports(service: dict[str, Any]) -> set[int]:
    """The container side of a service's published ports (short syntax)."""
    return {int(str(port).rsplit(":", 1)[-1].split("/")[0]) for port in service.get("ports", [])}


def bind_mounts(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(host path, container path) of every bind mount (short syntax, ./ or /)."""
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith((".", "/")):
            yield source, target


def healthcheck_command(service: dict[str, Any]) -> list[str]:
    """The healthcheck's command line (``CMD`` form), or [] when there is none."""
    test = service.get("healthcheck", {}).get("test", [])
    if isinstance(test, str):
        return ["sh", "-c", test]
    if test and test[0] == "CMD-SHELL":
        return ["sh", "-c", " ".join(test[1:])]
    return list(test[1:]) if test and test[0] == "CMD" else []


def healthcheck_url(service: dict[str, Any]) -> str:
    urls = [part for part in healthcheck_command(service) if "://" in part]
    return urls[0] if urls else ""


# --- the checks ---------------------------------------------------------------------------


def schema_problems(compose: dict[str, Any]) -> Problems:
    """Against the Compose Specification's JSON schema."""
    schema = json.loads(SCHEMA_FILE.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
        for error in validator.iter_errors(compose)
    ]


def _pinned(image: str) -> str | None:
    """Why ``image`` is not pinned to an exact version, or None."""
    name, _, digest = image.partition("@")
    if digest:
        return None
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"{image}: no tag"
    tag = last.rsplit(":", 1)[1]
    if tag == "latest" or not re.search(r"\d", tag):
        return f"{image}: tag {tag!r} is not a version"
    return None


def pin_problems(compose: dict[str, Any], root: Path = ROOT) -> Problems:
    """Every image, and every Dockerfile's FROM, pinned to a version (never ``latest``);
    images compose builds tagged with the version they build."""
    problems = []
    for name, service in services(compose).items():
        image = service.get("image")
        if image is None:
            problems.append(f"{name}: no image name")
            continue
        if reason := _pinned(image):
            problems.append(f"{name}: {reason}")
        if "build" in service:
            problems += [f"{name}: {reason}" for reason in _from_problems(service, root)]
    return problems


def _dockerfile(service: dict[str, Any], root: Path) -> Path:
    build = service["build"]
    context = root / (build if isinstance(build, str) else build.get("context", "."))
    return context / (
        "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    )


def from_images(dockerfile: Path) -> list[str]:
    """The base images of a Dockerfile's FROM lines, stages it names itself left out."""
    stages: set[str] = set()
    images = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if not words or words[0].upper() != "FROM":
            continue
        words = [word for word in words[1:] if not word.startswith("--")]
        if words[0].lower() not in stages:
            images.append(words[0])
        if len(words) >= 3 and words[1].upper() == "AS":
            stages.add(words[2].lower())
    return images


def _from_problems(service: dict[str, Any], root: Path) -> Problems:
    dockerfile = _dockerfile(service, root)
    if not dockerfile.is_file():
        return []  # build_problems reports it
    return [
        f"{dockerfile.relative_to(root)} FROM {reason}"
        for image in from_images(dockerfile)
        if (reason := _pinned(image))
    ]


def build_tag_problems(compose: dict[str, Any], root: Path = ROOT) -> Problems:
    """The images compose builds carry the version they contain: the collector the contrib
    release, the app closedloop's version."""
    release = (root / "collector" / "contrib-release.txt").read_text().strip().removeprefix("v")
    version_line = re.search(r'^version = "([^"]+)"', (root / "pyproject.toml").read_text(), re.M)
    version = version_line.group(1) if version_line else None
    expected = {"collector/Dockerfile": release, "deploy/app.Dockerfile": version}
    problems = []
    for name, service in services(compose).items():
        if "build" not in service:
            continue
        dockerfile = _dockerfile(service, root).relative_to(root).as_posix()
        tag = service["image"].rsplit(":", 1)[-1]
        if expected.get(dockerfile) != tag:
            problems.append(f"{name}: builds {dockerfile} but tags it {tag}")
    return problems


def mount_problems(compose: dict[str, Any], root: Path = ROOT) -> Problems:
    """Every bind-mounted host file or directory exists in the repository."""
    return [
        f"{name}: mounts {source}, which does not exist"
        for name, service in services(compose).items()
        for source, _ in bind_mounts(service)
        if not (root / source).exists()
    ]


def _ignored(path: str, rules: list[tuple[bool, str]]) -> bool:
    """Whether .dockerignore leaves ``path`` out (the last rule matching it or a parent
    wins, as Docker decides)."""
    parts = path.split("/")
    ignored = False
    for negated, pattern in rules:
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if fnmatch.fnmatchcase(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatchcase(parts[depth - 1], pattern[3:])
            ):
                ignored = not negated
                break
    return ignored


def _dockerignore(context: Path) -> list[tuple[bool, str]]:
    path = context / ".dockerignore"
    lines = path.read_text().splitlines() if path.is_file() else []
    rules = []
    for raw in lines:
        line = raw.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.removeprefix("!").strip("/")))
    return rules


def copy_sources(dockerfile: Path) -> list[str]:
    """Sources of the Dockerfile's COPY lines that read the build context."""
    sources = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if (
            words
            and words[0].upper() == "COPY"
            and not any(word.startswith("--from") for word in words)
        ):
            sources += [word for word in words[1:-1] if not word.startswith("--")]
    return sources


def build_problems(compose: dict[str, Any], root: Path = ROOT) -> Problems:
    """Every build context and Dockerfile exists; every COPY source is in the context and
    not left out by .dockerignore; links under what is copied stay inside it."""
    problems = []
    for name, service in services(compose).items():
        if "build" not in service:
            continue
        dockerfile = _dockerfile(service, root)
        build = service["build"]
        context = root / (build if isinstance(build, str) else build.get("context", "."))
        if not context.is_dir():
            problems.append(f"{name}: build context {context} does not exist")
            continue
        if not dockerfile.is_file():
            problems.append(f"{name}: {dockerfile.relative_to(root)} does not exist")
            continue
        rules = _dockerignore(context)
        sources = copy_sources(dockerfile)
        for source in sources:
            if not (context / source).exists():
                problems.append(f"{name}: COPY {source}: not in the build context")
            elif _ignored(source.strip("/"), rules):
                problems.append(f"{name}: COPY {source}: left out by .dockerignore")
        problems += [f"{name}: {problem}" for problem in _link_problems(context, sources)]
    return problems


def _link_problems(context: Path, sources: list[str]) -> Problems:
    copied = [(context / source).resolve() for source in sources]
    problems = []
    for source in sources:
        top = context / source
        links = [top] if top.is_symlink() else []
        if top.is_dir():
            links += [path for path in top.rglob("*") if path.is_symlink()]
        for link in links:
            target = link.resolve()
            if not any(target == path or path in target.parents for path in copied):
                problems.append(f"{link.relative_to(context)} links outside what is copied")
    return problems


def dependency_problems(compose: dict[str, Any]) -> Problems:
    """clickhouse -> schema -> collector, in that order and with those conditions; every
    service waited on as healthy has a healthcheck; nothing always started waits on a
    service only a profile starts."""
    problems = []
    all_services = services(compose)
    required = {
        ("schema", "clickhouse"): "service_healthy",
        ("collector", "schema"): "service_completed_successfully",
        ("collector", "jaeger"): "service_healthy",
    }
    for (name, dependency), condition in required.items():
        found = all_services.get(name, {}).get("depends_on", {}).get(dependency, {})
        if found.get("condition") != condition:
            problems.append(f"{name} does not wait for {dependency} ({condition})")
    for name, service in all_services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            target = all_services.get(dependency)
            if target is None:
                problems.append(f"{name} depends on {dependency}, which is not a service")
                continue
            if rule.get("condition") == "service_healthy" and not healthcheck_command(target):
                problems.append(f"{name} waits for {dependency} healthy: it has no healthcheck")
            if target.get("profiles") and not service.get("profiles"):
                problems.append(f"{name} always starts but {dependency} only in a profile")
    if all_services.get("schema", {}).get("restart") != "no":
        problems.append('schema is a one-shot job: restart must be "no"')
    return problems


def _receiver_ports(config: dict[str, Any]) -> dict[str, int]:
    protocols = config["receivers"]["otlp"]["protocols"]
    return {
        protocol: port_of(interpolate(settings["endpoint"]))
        for protocol, settings in protocols.items()
    }


def _runs_config(service: dict[str, Any], config_file: str) -> bool:
    """Whether the service mounts ``collector/<config_file>`` and runs it."""
    mounted = {target for source, target in bind_mounts(service) if source.endswith(config_file)}
    return bool(mounted & set(service.get("command", [])))


def collector_wiring_problems(compose: dict[str, Any], root: Path = ROOT) -> Problems:
    """Service names and ports agree with the collector configs: the ClickHouse exporters
    reach the clickhouse service's native port, the Jaeger exporter the jaeger service's
    OTLP gRPC port, the load balancer's backends are the scale profile's tail samplers,
    published and probed ports are the ones the receivers listen on."""
    problems = []
    all_services = services(compose)
    production = load_yaml(root / "collector" / "otel-collector.yaml")
    jaeger = load_yaml(root / "jaeger" / "config.yaml")
    receivers = _receiver_ports(production)
    for exporter, settings in production["exporters"].items():
        endpoint = interpolate(settings["endpoint"])
        if exporter.startswith("clickhouse"):
            expected = ("clickhouse", CLICKHOUSE_NATIVE_PORT)
        elif exporter.startswith("otlp"):
            expected = ("jaeger", _receiver_ports(jaeger)["grpc"])
        else:
            continue
        if (host_of(endpoint), port_of(endpoint)) != expected or expected[0] not in all_services:
            problems.append(f"exporter {exporter} sends to {endpoint}, not {expected}")
    samplers = {name for name, s in all_services.items() if _runs_config(s, "otel-collector.yaml")}
    if "collector" not in samplers:
        problems.append("the collector service does not run collector/otel-collector.yaml")
    for name in samplers:
        service = all_services[name]
        environment = service.get("environment", {})
        for variable, expected_host, port in (
            ("CLICKHOUSE_ENDPOINT", "clickhouse", CLICKHOUSE_NATIVE_PORT),
            ("JAEGER_OTLP_ENDPOINT", "jaeger", _receiver_ports(jaeger)["grpc"]),
        ):
            if variable in environment and (
                host_of(environment[variable]),
                port_of(environment[variable]),
            ) != (expected_host, port):
                problems.append(f"{name}: {variable}={environment[variable]}")
        if port_of(healthcheck_url(service) or ":0") != receivers["http"]:
            problems.append(f"{name}: healthcheck does not probe the OTLP/HTTP receiver")
        if not container_ports(service) <= set(receivers.values()):
            problems.append(f"{name}: publishes {container_ports(service)}, not the receivers")
    if container_ports(all_services.get("collector", {})) != set(receivers.values()):
        problems.append("collector does not publish both OTLP ports")
    problems += _load_balancer_problems(all_services, root, receivers["grpc"])
    problems += _jaeger_problems(all_services.get("jaeger", {}), jaeger)
    return problems


def _load_balancer_problems(
    all_services: dict[str, dict[str, Any]], root: Path, grpc_port: int
) -> Problems:
    balancer = load_yaml(root / "collector" / "otel-collector-lb.yaml")
    backends = balancer["exporters"]["load_balancing"]["resolver"]["static"]["hostnames"]
    scale = {
        name
        for name, service in all_services.items()
        if "scale" in service.get("profiles", []) and _runs_config(service, "otel-collector.yaml")
    }
    problems = []
    if {host_of(backend) for backend in backends} != scale:
        problems.append(f"load balancer backends {backends} are not the scale samplers {scale}")
    problems += [
        f"backend {backend}: port is not the samplers' OTLP gRPC port {grpc_port}"
        for backend in backends
        if port_of(backend) != grpc_port
    ]
    balancers = [
        name
        for name, service in all_services.items()
        if _runs_config(service, "otel-collector-lb.yaml")
    ]
    if not balancers or any(
        "scale" not in all_services[name].get("profiles", []) for name in balancers
    ):
        problems.append("no load balancer in the scale profile runs otel-collector-lb.yaml")
    return problems


def _jaeger_problems(service: dict[str, Any], config: dict[str, Any]) -> Problems:
    extensions = config["extensions"]
    ui = port_of(interpolate(extensions["jaeger_query"]["http"]["endpoint"]))
    problems = []
    if ui not in container_ports(service):
        problems.append(f"jaeger does not publish its UI port {ui}")
    health = extensions.get("healthcheckv2", {}).get("http", {}).get("endpoint")
    probed = healthcheck_url(service)
    if health is None or not probed or port_of(probed) != port_of(interpolate(health)):
        problems.append("jaeger's healthcheck does not probe its healthcheckv2 endpoint")
    return problems


def grafana_problems(compose: dict[str, Any], root: Path = ROOT) -> Problems:
    """Grafana's provisioning points at compose services with the credentials compose
    gives ClickHouse; the dashboards' folder is mounted where the provider reads it; the
    ClickHouse plugin installed is the version the dashboards were written for."""
    grafana = services(compose).get("grafana", {})
    mounts = dict(bind_mounts(grafana))
    problems = []
    provisioning = mounts.get("./dashboards/provisioning")
    if provisioning != "/etc/grafana/provisioning":
        return ["grafana does not mount ./dashboards/provisioning at /etc/grafana/provisioning"]
    datasources = [
        source
        for path in sorted((root / "dashboards/provisioning/datasources").glob("*.y*ml"))
        for source in load_yaml(path).get("datasources", [])
    ]
    by_type = {source["type"]: source for source in datasources}
    clickhouse = by_type.get("grafana-clickhouse-datasource")
    if clickhouse is None:
        problems.append("no ClickHouse data source is provisioned")
    else:
        problems += _clickhouse_source_problems(clickhouse, compose, grafana)
    jaeger_source = by_type.get("jaeger")
    jaeger_port = port_of(
        interpolate(
            load_yaml(root / "jaeger/config.yaml")["extensions"]["jaeger_query"]["http"]["endpoint"]
        )
    )
    if jaeger_source is None or (host_of(jaeger_source["url"]), port_of(jaeger_source["url"])) != (
        "jaeger",
        jaeger_port,
    ):
        problems.append("the Jaeger data source does not point at the jaeger service's UI port")
    for path in sorted((root / "dashboards/provisioning/dashboards").glob("*.y*ml")):
        for provider in load_yaml(path).get("providers", []):
            if provider["options"]["path"] not in mounts.values():
                problems.append(
                    f"dashboard provider reads {provider['options']['path']}: unmounted"
                )
    problems += _plugin_version_problems(grafana, root)
    return problems


def _clickhouse_source_problems(
    source: dict[str, Any], compose: dict[str, Any], grafana: dict[str, Any]
) -> Problems:
    settings = source.get("jsonData", {})
    ports = {"native": CLICKHOUSE_NATIVE_PORT, "http": CLICKHOUSE_HTTP_PORT}
    problems = []
    if settings.get("host") != "clickhouse" or "clickhouse" not in services(compose):
        problems.append(f"ClickHouse data source host {settings.get('host')!r} is no service")
    if settings.get("port") != ports.get(settings.get("protocol", "native")):
        problems.append(f"ClickHouse data source port {settings.get('port')} is not the server's")
    if settings.get("username") != "${CLICKHOUSE_USER}":
        problems.append("the ClickHouse data source's user is not compose's CLICKHOUSE_USER")
    secrets = (
        f"{settings.get('username', '')} {source.get('secureJsonData', {}).get('password', '')}"
    )
    if {name for name, _ in _VARIABLE.findall(secrets)} - set(grafana.get("environment", {})):
        problems.append("the data source's user or password reads a variable grafana is not given")
    return problems


def _plugin_version_problems(grafana: dict[str, Any], root: Path) -> Problems:
    preinstall = grafana.get("environment", {}).get("GF_PLUGINS_PREINSTALL_SYNC", "")
    pinned = dict(entry.split("@")[:2] for entry in preinstall.split(",") if "@" in entry)
    installed = pinned.get("grafana-clickhouse-datasource")
    written_for = {
        match
        for path in (root / "dashboards/json").glob("*.json")
        for match in re.findall(r'"pluginVersion":\s*"([^"]+)"', path.read_text())
    }
    if installed is None:
        return ["grafana does not install grafana-clickhouse-datasource at a pinned version"]
    if written_for - {installed}:
        return [f"dashboards were written for plugin {written_for}, grafana installs {installed}"]
    return []


def mutated(compose: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``compose`` with the item at ``a/b/0/c`` set to ``value`` (deleted
    when ``value`` is ``...``)."""
    broken = copy.deepcopy(compose)
    *parents, last = path.split("/")
    node: Any = broken
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    key_or_index: Any = int(last) if isinstance(node, list) else last
    if value is ...:
        del node[key_or_index]
    else:
        node[key_or_index] = value
    return broken
