#!/usr/bin/env bash
# The kind quickstart: a local cluster running the whole demo, from nothing, in one command.
#
#   examples/kind/up.sh          (or: make demo)
#
# Creates the kind cluster (unless it exists), installs metrics-server, the Vertical Pod
# Autoscaler, kube-prometheus-stack, KEDA (scraped by it) and a single-node Kafka at the
# versions in versions.env, builds the workload and operator images and loads them into the
# cluster, installs the operator and applies examples/basic.yaml. Running it again updates
# what changed and rebuilds the images; nothing breaks. examples/kind/down.sh removes it all.
#
# Needs kind, kubectl, helm and docker. SCALINGDEMO_CLUSTER names the cluster (scalingdemo).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repository="$(cd "${here}/../.." && pwd)"
# shellcheck source=examples/kind/versions.env
source "${here}/versions.env"
cluster="${SCALINGDEMO_CLUSTER:-scalingdemo}"
context="kind-${cluster}"
demo_namespace=default

say() { printf '\n==> %s\n' "$*"; }
k() { kubectl --context "${context}" "$@"; }
chart() {
  local release="$1" namespace="$2" reference="$3" version="$4"
  shift 4
  helm upgrade --install "${release}" "${reference}" --kube-context "${context}" \
    --namespace "${namespace}" --create-namespace --version "${version}" \
    --wait --timeout 10m "$@"
}

for tool in kind kubectl helm docker; do
  if ! command -v "${tool}" >/dev/null 2>&1; then
    echo "up.sh needs ${tool} on PATH (see README.md, Prerequisites)" >&2
    exit 1
  fi
done

# Listed first, then searched: `kind get clusters | grep -q` can die of SIGPIPE under pipefail
# when grep exits at the first match while kind is still writing.
clusters="$(kind get clusters 2>/dev/null)"
if grep -qx "${cluster}" <<<"${clusters}"; then
  say "kind cluster ${cluster} exists"
else
  say "creating kind cluster ${cluster}"
  kind create cluster --name "${cluster}" --config "${here}/cluster.yaml" \
    --image "${KIND_NODE_IMAGE}" --wait 180s
fi

say "Helm repositories"
helm repo add metrics-server https://kubernetes-sigs.github.io/metrics-server --force-update
helm repo add kedacore https://kedacore.github.io/charts --force-update
helm repo add autoscalers https://kubernetes.github.io/autoscaler --force-update
helm repo add prometheus-community https://prometheus-community.github.io/helm-charts \
  --force-update
helm repo update metrics-server kedacore autoscalers prometheus-community

say "metrics-server ${METRICS_SERVER_CHART_VERSION}"
chart metrics-server kube-system metrics-server/metrics-server \
  "${METRICS_SERVER_CHART_VERSION}" --values "${here}/values/metrics-server.yaml"

say "Vertical Pod Autoscaler (chart ${VPA_CHART_VERSION})"
chart vertical-pod-autoscaler kube-system autoscalers/vertical-pod-autoscaler \
  "${VPA_CHART_VERSION}"

say "kube-prometheus-stack ${KUBE_PROMETHEUS_STACK_CHART_VERSION}"
chart kube-prometheus-stack monitoring prometheus-community/kube-prometheus-stack \
  "${KUBE_PROMETHEUS_STACK_CHART_VERSION}" \
  --values "${here}/values/kube-prometheus-stack.yaml"

# After kube-prometheus-stack: KEDA's chart writes a ServiceMonitor, whose CRD that installs.
say "KEDA ${KEDA_CHART_VERSION}"
chart keda keda kedacore/keda "${KEDA_CHART_VERSION}" --values "${here}/values/keda.yaml"

say "Kafka (${KAFKA_IMAGE})"
sed "s|image: apache/kafka$|image: ${KAFKA_IMAGE}|" "${here}/kafka.yaml" | k apply -f -
k rollout status statefulset/kafka --namespace kafka --timeout 5m

say "building and loading the images"
docker build --file "${repository}/Dockerfile.workload" --tag scalingdemo-workload:dev \
  "${repository}"
docker build --file "${repository}/Dockerfile.operator" --tag scalingdemo-operator:dev \
  "${repository}"
kind load docker-image --name "${cluster}" scalingdemo-workload:dev scalingdemo-operator:dev

say "the operator"
k apply --server-side -k "${repository}/deploy/operator"
k wait --for condition=Established crd/scalingdemos.scalingdemo.dev --timeout 60s
# The tag stays :dev, so pods pick up a rebuilt image only when they are replaced.
k rollout restart deployment/scalingdemo-operator --namespace scalingdemo-system
k rollout status deployment/scalingdemo-operator --namespace scalingdemo-system --timeout 5m

say "the demo (examples/basic.yaml)"
k apply --namespace "${demo_namespace}" -f "${repository}/examples/basic.yaml"
managed=(--namespace "${demo_namespace}" --selector app.kubernetes.io/managed-by=scalingdemo-operator)
if [[ -n "$(k get deployment "${managed[@]}" -o name)" ]]; then
  k rollout restart deployment "${managed[@]}"
fi
if ! k wait --namespace "${demo_namespace}" --for condition=Ready scalingdemo/basic \
  --timeout 5m; then
  echo "basic is not Ready yet; see: kubectl describe scalingdemo basic" >&2
fi
k get scalingdemo --namespace "${demo_namespace}" -o wide

cat <<EOT

The demo is running (kubectl context ${context}).

  The API (run the load generator against it):
    kubectl --context ${context} port-forward -n ${demo_namespace} svc/basic-api 8080:8080
    scalingdemo-load http://127.0.0.1:8080 --kind tasks --complexity 5 --rate 20 --duration 120
    scalingdemo-load --help      # after: pip install .   (rates, batches, concurrency)

  Watch it scale:
    kubectl --context ${context} get scalingdemo -w
    kubectl --context ${context} get hpa,scaledobject,vpa -n ${demo_namespace}

  Grafana (user admin), dashboards in the ScalingDemo folder:
    kubectl --context ${context} -n monitoring get secret kube-prometheus-stack-grafana \\
      -o jsonpath='{.data.admin-password}' | base64 -d; echo
    kubectl --context ${context} -n monitoring port-forward svc/kube-prometheus-stack-grafana 3000:80
    open http://127.0.0.1:3000

  Prometheus:
    kubectl --context ${context} -n monitoring port-forward svc/kube-prometheus-stack-prometheus 9090:9090
    open http://127.0.0.1:9090

  Tear down: make demo-down   (or examples/kind/down.sh)
EOT
