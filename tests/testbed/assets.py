"""Fetch and build everything the bed runs, from the registries, into the cache.

Each component lands in its own cache directory named after its version; a
directory only appears once its build succeeded (we build into a temporary
sibling and rename), so an interrupted first run is simply redone.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import versions
from .toolchain import BedError, cache_root, capture, go_env, require, run, say

KUBERNETES_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")

# Upstream CRD files, relative to their Go module's root directory. KEDA needs every one of its
# CRDs, also those our objects never use (ScaledJob, the eventing CloudEventSources): its
# operator's manager gives up and exits when a watched kind's cache has not synced within two
# minutes of its start, which a missing CRD guarantees.
UPSTREAM_CRDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("github.com/kedacore/keda/v2", versions.KEDA): tuple(
        f"config/crd/bases/{name}.yaml"
        for name in (
            "keda.sh_scaledobjects",
            "keda.sh_scaledjobs",
            "keda.sh_triggerauthentications",
            "keda.sh_clustertriggerauthentications",
            "eventing.keda.sh_cloudeventsources",
            "eventing.keda.sh_clustercloudeventsources",
        )
    ),
    ("k8s.io/autoscaler/vertical-pod-autoscaler", versions.VERTICAL_POD_AUTOSCALER): (
        "deploy/vpa-v1-crd-gen.yaml",
    ),
    ("github.com/prometheus-operator/prometheus-operator", versions.PROMETHEUS_OPERATOR): (
        "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
        "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
        "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
    ),
}


@dataclass(frozen=True)
class Binaries:
    """Paths of the control-plane executables the bed starts."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path
    prometheus: Path
    promtool: Path
    keda_webhooks: Path


@dataclass(frozen=True)
class Assets:
    """Everything needed to start a bed, resolved to local paths."""

    binaries: Binaries
    kafka_libs: Path
    crds: tuple[Path, ...]


def prepare() -> Assets:
    """Resolve every asset, building what the cache lacks."""
    require("go", "build etcd, Kubernetes, kwok and Prometheus from the Go module proxy")
    require("java", "run the Kafka broker")
    root = cache_root()
    say(f"cache: {root}")
    provided = _kubebuilder_assets()
    kubernetes = cached(root / f"kubernetes-{versions.KUBERNETES}", _build_kubernetes)
    prometheus = cached(root / f"prometheus-{versions.PROMETHEUS}", _build_prometheus)
    binaries = Binaries(
        etcd=provided.get("etcd") or cached(root / f"etcd-{versions.ETCD}", _build_etcd) / "etcd",
        kube_apiserver=provided.get("kube-apiserver") or kubernetes / "kube-apiserver",
        kube_controller_manager=kubernetes / "kube-controller-manager",
        kube_scheduler=kubernetes / "kube-scheduler",
        kubectl=provided.get("kubectl") or kubernetes / "kubectl",
        kwok=cached(root / f"kwok-{versions.KWOK}", _build_kwok) / "kwok",
        prometheus=prometheus / "prometheus",
        promtool=prometheus / "promtool",
        keda_webhooks=keda_webhooks(),
    )
    strimzi = cached(root / f"strimzi-crds-{versions.STRIMZI}", _generate_strimzi_crds)
    crds = (*_upstream_crds(), *(strimzi / file for file in STRIMZI_CRDS.values()))
    return Assets(binaries=binaries, kafka_libs=kafka_libs(), crds=crds)


def kafka_libs() -> Path:
    """Kafka's jars, fetched on first use; alone, they serve a broker without the rest of the
    bed (the workload benchmark runs one)."""
    require("java", "run the Kafka broker")
    return cached(cache_root() / f"kafka-{versions.KAFKA}-slf4j-{versions.SLF4J}", _fetch_kafka)


def keda() -> tuple[Path, Path]:
    """KEDA's operator and metrics adapter binaries, built on first use.

    Kept out of ``prepare`` because only scaling tests run KEDA and its build
    (every scaler's cloud SDK) is the slowest of the bed.
    """
    built = cached(cache_root() / f"keda-{versions.KEDA}", _build_keda)
    return built / "operator", built / "adapter"


def keda_webhooks() -> Path:
    """KEDA's admission webhook server.

    Every bed runs it, unlike KEDA's operator and adapter, so it has a cache directory
    of its own: its build is small (no scalers), and adding it left the operator's
    cached build valid.
    """
    return (
        cached(cache_root() / f"keda-webhooks-{versions.KEDA}", _build_keda_webhooks) / "webhooks"
    )


def helm() -> Path:
    """The ``helm`` command, built on first use.

    Kept out of ``prepare``: only the chart's tests run it, and a bed without them
    should not pay for its build.
    """
    return cached(cache_root() / f"helm-{versions.HELM}", _build_helm) / "helm"


def kubelet() -> Path:
    """The kubelet of the same Kubernetes release, built on first use.

    Kept out of ``prepare`` like KEDA: only tests that run real pods start a real node.
    """
    return cached(cache_root() / f"kubelet-{versions.KUBERNETES}", _build_kubelet) / "kubelet"


def _kubebuilder_assets() -> dict[str, Path]:
    """Binaries from KUBEBUILDER_ASSETS (the envtest convention), when it is set."""
    directory = os.environ.get("KUBEBUILDER_ASSETS")
    if not directory:
        return {}
    found = {
        name: Path(directory) / name
        for name in ("etcd", "kube-apiserver", "kubectl")
        if (Path(directory) / name).is_file()
    }
    if "etcd" not in found or "kube-apiserver" not in found:
        raise BedError(f"KUBEBUILDER_ASSETS={directory} must hold etcd and kube-apiserver")
    say(f"using {', '.join(sorted(found))} from KUBEBUILDER_ASSETS={directory}")
    return found


def cached(target: Path, build: Callable[[Path, Path], None]) -> Path:
    """Return ``target``, building it through a temporary directory when absent.

    A lock file serialises concurrent test sessions that find the same component
    missing: the second one waits and then reuses the first one's build.
    """
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.with_name(f"{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_dir():
            return target
        partial = target.with_name(f"{target.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        build(partial, target.parent / "logs")
        os.replace(partial, target)
    return target


def go_module(module: str, version: str) -> dict[str, str]:
    """Download a module through the proxy and return ``go mod download -json``."""
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@v{version}"],
        env=go_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    info = json.loads(result.stdout or "{}")
    if result.returncode != 0 or "Error" in info:
        detail = info.get("Error") or result.stderr.strip()
        raise BedError(f"go mod download {module}@v{version} failed: {detail}")
    return info


@dataclass(frozen=True)
class Wrapper:
    """A throwaway main module that requires an upstream module in order to build it.

    Upstream modules with local ``replace`` directives cannot be built with
    ``go install``, and a dependency's replaces and excludes are ignored. The
    wrapper therefore repeats upstream's ``go`` and ``godebug`` lines (runtime
    defaults), its version-to-version replaces and its excludes, and adds
    ``replaces`` of its own for what upstream replaced with local paths.
    """

    name: str
    module: str
    version: str
    imports: tuple[str, ...]
    replaces: tuple[str, ...] = ()

    def write(self, directory: Path, upstream: dict) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        go_mod = directory / "go.mod"
        go_mod.write_text(f"module scalingdemo.testbed/{self.name}\n")
        edits = [f"-go={upstream['Go']}", f"-require={self.module}@v{self.version}"]
        edits += [f"-godebug={d['Key']}={d['Value']}" for d in upstream.get("GoDebug") or []]
        edits += [f"-replace={r}" for r in (*_versioned_replaces(upstream), *self.replaces)]
        edits += [f"-exclude={e['Path']}@{e['Version']}" for e in upstream.get("Exclude") or []]
        capture(["go", "mod", "edit", *edits, go_mod], f"go mod edit ({self.name})")
        blank_imports = "\n".join(f'\t_ "{package}"' for package in self.imports)
        (directory / "tools.go").write_text(
            f"//go:build tools\n\npackage tools\n\nimport (\n{blank_imports}\n)\n"
        )


def upstream_go_mod(module: str, version: str) -> dict:
    """An upstream go.mod as ``go mod edit -json`` parses it."""
    path = go_module(module, version)["GoMod"]
    return json.loads(capture(["go", "mod", "edit", "-json", path], f"go mod edit -json {path}"))


def _versioned_replaces(upstream: dict) -> list[str]:
    """Upstream's replaces that point at a published version (not a local path)."""
    replaces = []
    for replace in upstream.get("Replace") or []:
        old, new = replace["Old"], replace["New"]
        if not new.get("Version"):
            continue
        old_spec = f"{old['Path']}@{old['Version']}" if old.get("Version") else old["Path"]
        replaces.append(f"{old_spec}={new['Path']}@{new['Version']}")
    return replaces


def staging_replaces(upstream: dict, version: str) -> tuple[str, ...]:
    """Kubernetes replaces its staging modules with ./staging paths, which are not in
    the module zip; each is published as its own module at v0.<minor>.<patch>."""
    published = "v0." + version.split(".", 1)[1]
    staged = [
        r["Old"]["Path"]
        for r in upstream.get("Replace") or []
        if r["New"]["Path"].startswith("./staging/")
    ]
    if not staged:
        raise BedError(f"found no staging replace directives in k8s.io/kubernetes v{version}")
    return tuple(f"{module}={module}@{published}" for module in staged)


def _build_kubernetes(out: Path, logs: Path) -> None:
    _build_kubernetes_commands("kubernetes", KUBERNETES_COMMANDS, out, logs)


def _build_kubelet(out: Path, logs: Path) -> None:
    _build_kubernetes_commands("kubelet", ("kubelet",), out, logs)


def _build_kubernetes_commands(name: str, commands: tuple[str, ...], out: Path, logs: Path) -> None:
    """Build ``k8s.io/kubernetes/cmd/<command>`` binaries of the pinned release into ``out``."""
    version = versions.KUBERNETES
    upstream = upstream_go_mod("k8s.io/kubernetes", version)
    packages = tuple(f"k8s.io/kubernetes/cmd/{command}" for command in commands)
    wrapper = Wrapper(
        name, "k8s.io/kubernetes", version, packages, staging_replaces(upstream, version)
    )
    major, minor, _ = version.split(".")
    stamp = {"gitVersion": f"v{version}", "gitMajor": major, "gitMinor": minor}
    ldflags = " ".join(
        f"-X {package}.{key}={value}"
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in stamp.items()
    )
    _build_wrapped(wrapper, upstream, f"{out}/", ["-ldflags", ldflags], logs)


def _build_etcd(out: Path, logs: Path) -> None:
    module = "go.etcd.io/etcd/server/v3"
    wrapper = Wrapper("etcd", module, versions.ETCD, (module,))
    # The module root is the main package; -o names the binary (it would be "server").
    _build_wrapped(wrapper, upstream_go_mod(module, versions.ETCD), str(out / "etcd"), [], logs)


def _build_wrapped(
    wrapper: Wrapper, upstream: dict, output: str, flags: list[str], logs: Path
) -> None:
    """Write the wrapper, resolve its dependencies, and build its imports as ``output``.

    An ``output`` ending in a slash makes go build write one binary per package there.
    """
    name = f"{wrapper.name}-{wrapper.version}"
    source = cache_root() / "src" / name
    wrapper.write(source, upstream)
    say(f"building {name}")
    run(
        ["go", "mod", "tidy"],
        cwd=source,
        env=go_env(),
        log=logs / f"{name}-tidy.log",
        what=f"go mod tidy ({name})",
    )
    run(
        ["go", "build", "-v", "-trimpath", *flags, "-o", output, *wrapper.imports],
        cwd=source,
        env=go_env(),
        log=logs / f"{name}-build.log",
        what=f"go build {name} (first time: minutes)",
    )


def _build_kwok(out: Path, logs: Path) -> None:
    _go_install(out, logs, f"kwok-{versions.KWOK}", [f"sigs.k8s.io/kwok/cmd/kwok@v{versions.KWOK}"])


def _build_keda(out: Path, logs: Path) -> None:
    _build_keda_commands("keda", ("operator", "adapter"), out, logs)


def _build_keda_webhooks(out: Path, logs: Path) -> None:
    _build_keda_commands("keda-webhooks", ("webhooks",), out, logs)


def _build_keda_commands(name: str, commands: tuple[str, ...], out: Path, logs: Path) -> None:
    """Build main packages of KEDA's module, one binary per command in ``out``."""
    module = "github.com/kedacore/keda/v2"
    wrapper = Wrapper(name, module, versions.KEDA, tuple(f"{module}/cmd/{c}" for c in commands))
    _build_wrapped(wrapper, upstream_go_mod(module, versions.KEDA), f"{out}/", [], logs)


def _build_helm(out: Path, logs: Path) -> None:
    # Helm's module has no replace directives, so `go install` builds it as released; the
    # version stamp is what Helm's own Makefile sets for a tagged build (`helm version`).
    module = "helm.sh/helm/v4"
    stamp = f"-X {module}/internal/version.version=v{versions.HELM}"
    _go_install(
        out,
        logs,
        f"helm-{versions.HELM}",
        [f"{module}/cmd/helm@v{versions.HELM}"],
        ["-ldflags", stamp],
    )


def _build_prometheus(out: Path, logs: Path) -> None:
    # remove_all_sd keeps only static and file service discovery: all the bed
    # needs, and a far smaller build than every cloud provider's SDK.
    _go_install(
        out,
        logs,
        f"prometheus-{versions.PROMETHEUS}",
        [
            f"github.com/prometheus/prometheus/cmd/{command}@v{versions.PROMETHEUS_MODULE}"
            for command in ("prometheus", "promtool")
        ],
        ["-tags", "remove_all_sd"],
    )


def _go_install(
    out: Path, logs: Path, name: str, packages: list[str], flags: list[str] | None = None
) -> None:
    """``go install`` for modules without replace directives, straight into ``out``."""
    say(f"building {name}")
    run(
        ["go", "install", "-v", "-trimpath", *(flags or []), *packages],
        env=go_env() | {"GOBIN": str(out)},
        log=logs / f"{name}-build.log",
        what=f"go install {name} (first time: minutes)",
    )


@dataclass(frozen=True)
class Artifact:
    """A Maven coordinate; ``scope="import"`` with ``kind="pom"`` imports a BOM."""

    group: str
    name: str
    version: str
    kind: str = "jar"
    scope: str = "compile"

    def xml(self) -> str:
        return (
            f"<dependency><groupId>{self.group}</groupId><artifactId>{self.name}</artifactId>"
            f"<version>{self.version}</version><type>{self.kind}</type>"
            f"<scope>{self.scope}</scope></dependency>"
        )


def maven_pom(name: str, dependencies: list[Artifact], managed: list[Artifact]) -> str:
    """A throwaway project whose only purpose is to make Maven resolve ``dependencies``.

    ``managed`` pins versions of what they pull in transitively, as upstream's
    own build does, instead of Maven's nearest-wins choice.
    """

    def listing(artifacts: list[Artifact]) -> str:
        return "".join(f"\n    {artifact.xml()}" for artifact in artifacts)

    management = (
        f"\n  <dependencyManagement><dependencies>{listing(managed)}"
        "\n  </dependencies></dependencyManagement>"
        if managed
        else ""
    )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        f"  <groupId>dev.scalingdemo.testbed</groupId><artifactId>{name}</artifactId>\n"
        f"  <version>1</version><packaging>pom</packaging>{management}\n"
        f"  <dependencies>{listing(dependencies)}\n  </dependencies>\n"
        "</project>\n"
    )


def _maven(name: str, pom: str, goal: list[str], logs: Path, what: str) -> None:
    """Write ``pom`` into the cache's source tree and run one Maven goal on it."""
    mvn = require("mvn", "resolve jars from Maven Central")
    source = cache_root() / "src" / name
    source.mkdir(parents=True, exist_ok=True)
    (source / "pom.xml").write_text(pom)
    say(what)
    run([mvn, "-B", "-q", *goal], cwd=source, log=logs / f"{name}-maven.log", what=what)


def _fetch_kafka(out: Path, logs: Path) -> None:
    # kafka_2.13 brings no SLF4J binding, and an old slf4j-api through its
    # dependencies: pin both so the broker actually logs.
    dependencies = [
        Artifact("org.apache.kafka", "kafka_2.13", versions.KAFKA),
        Artifact("org.slf4j", "slf4j-api", versions.SLF4J),
        Artifact("org.slf4j", "slf4j-simple", versions.SLF4J),
    ]
    _maven(
        f"kafka-{versions.KAFKA}",
        maven_pom("kafka-runtime", dependencies, []),
        ["dependency:copy-dependencies", f"-DoutputDirectory={out}", "-DincludeScope=runtime"],
        logs,
        f"fetching Apache Kafka {versions.KAFKA} jars",
    )


# What Strimzi's api module passes to its CRD generator for the cluster operator's
# install files (the exec-maven-plugin execution in io.strimzi:api's pom).
STRIMZI_CRD_OPTIONS = (
    *("--label", "app:strimzi", "--label", "strimzi.io/crd-install:true"),
    *("--target-kube", "1.16+", "--crd-api-version", "v1"),
    *("--api-versions", "v1", "--storage-version", "v1", "--yaml"),
)
STRIMZI_CRDS = {"io.strimzi.api.kafka.model.topic.KafkaTopic": "kafkatopics.kafka.strimzi.io.yaml"}


def _generate_strimzi_crds(out: Path, logs: Path) -> None:
    """Generate Strimzi's CRDs the way its build does, from its published model classes."""
    version = versions.STRIMZI
    name = f"strimzi-{version}"
    classpath = cache_root() / "src" / name / "classpath"
    pom = maven_pom(
        "strimzi-crd-generator",
        [Artifact("io.strimzi", artifact, version) for artifact in ("api", "crd-generator")],
        [Artifact("io.strimzi", "strimzi", version, kind="pom", scope="import")],
    )
    _maven(
        name,
        pom,
        ["dependency:build-classpath", f"-Dmdep.outputFile={classpath}"],
        logs,
        f"fetching Strimzi {version} api and crd-generator",
    )
    outputs = [f"{model}={out / file}" for model, file in STRIMZI_CRDS.items()]
    run(
        [
            java_at_least(versions.STRIMZI_JAVA, f"run Strimzi {version}'s CRD generator"),
            "-cp",
            classpath.read_text().strip(),
            "io.strimzi.crdgenerator.CrdGenerator",
            *STRIMZI_CRD_OPTIONS,
            *outputs,
        ],
        log=logs / f"{name}-crd-generator.log",
        what=f"generating Strimzi {version} CRDs",
    )


def java_major(version_output: str) -> int:
    """The feature release of a ``java -version`` banner (8 for the old "1.8.0_x" form)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        raise BedError(f"cannot read a Java version from: {version_output.strip()!r}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def java_at_least(release: int, purpose: str) -> str:
    """A ``java`` of ``release`` or newer: JAVA_HOME's, the one on PATH, then /usr/lib/jvm's.

    The broker runs on the default JDK, but some tools ship newer class files, so
    a second JDK installed beside it is found without asking anyone to switch.
    """
    candidates = (
        [Path(os.environ["JAVA_HOME"]) / "bin" / "java"] if "JAVA_HOME" in os.environ else []
    )
    on_path = shutil.which("java")
    candidates += [Path(on_path)] if on_path else []
    candidates += sorted(Path("/usr/lib/jvm").glob("*/bin/java"))
    for java in filter(Path.is_file, candidates):
        banner = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        if banner.returncode == 0 and java_major(banner.stderr) >= release:
            return str(java)
    raise BedError(
        f"no Java {release} or newer found (JAVA_HOME, PATH, /usr/lib/jvm): it is needed to "
        f"{purpose}. See README.md, section 'Prerequisites'."
    )


def _upstream_crds() -> tuple[Path, ...]:
    """Upstream CRD manifests, straight from the downloaded module trees."""
    paths = []
    for (module, version), files in UPSTREAM_CRDS.items():
        root = Path(go_module(module, version)["Dir"])
        paths.extend(root / relative for relative in files)
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        raise BedError(f"upstream CRD files not found: {', '.join(missing)}")
    return tuple(paths)
