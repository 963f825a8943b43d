"""Every version the test bed fetches, in one place.

Bumping a version here changes the cache key of what depends on it, so a
stale binary is never reused. ``CACHE_LAYOUT`` changes when the way we build
or lay out the cache changes.
"""

CACHE_LAYOUT = "v1"

KUBERNETES = "1.36.3"
ETCD = "3.6.16"
KWOK = "0.7.0"

# The Go module's v0.X.Y is Prometheus release 3.X.Y.
PROMETHEUS = "3.16.0"
PROMETHEUS_MODULE = "0.316.0"

KAFKA = "4.4.0"
SLF4J = "2.0.20"

KEDA = "2.21.0"

# Helm 4, the maintained major. Each Helm release is built against one Kubernetes client
# minor and supports that minor and the three before it: 4.3 (client 1.37) covers the
# bed's 1.36.
HELM = "4.3.2"
VERTICAL_POD_AUTOSCALER = "1.8.1"
PROMETHEUS_OPERATOR = "0.85.0"

# Strimzi publishes no CRD files to Maven Central: the bed generates them from
# io.strimzi:api with io.strimzi:crd-generator, both of this release, whose
# classes need this Java release or newer.
STRIMZI = "1.2.0"
STRIMZI_JAVA = 21

# The images' base: a Debian rootfs from these packages (mmdebstrap), imported FROM scratch
# and handed to the Dockerfiles as PYTHON_IMAGE, since no container registry is reachable.
DEBIAN_SUITE = "bookworm"
BASE_PACKAGES = ("python3.11", "python3-venv", "python-is-python3", "passwd", "ca-certificates")
