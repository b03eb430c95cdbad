#!/usr/bin/env bash
# `make chart-check`: hadolint on the Dockerfile, helm lint, helm template for every value set in
# charts/turnforge/ci/, kubeconform on every rendered manifest, and tests/test_chart.py (what the chart renders,
# including the checks for what installing on a real API server found: issue 14), all offline.
# `make cluster-test` installs the chart on a real API server.
#
# helm and kubeconform are built once by scripts/go-tool.sh and cached in ~/.cache/turnforge/bin;
# the Kubernetes JSON schemas are generated once from Go modules (the k8s.io/kubernetes OpenAPI spec, the KEDA
# and CloudNativePG CRDs) into ~/.cache/turnforge/k8s-schemas/. Strimzi's kinds (Kafka, KafkaNodePool) are the one
# skip: Strimzi is a Java project whose CRDs ship in no package this machine can install.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBE_VERSION=1.33.4
KEDA_VERSION=v2.17.2
CNPG_VERSION=v1.26.1
CACHE=${TURNFORGE_CACHE:-$HOME/.cache/turnforge}
SCHEMAS=$CACHE/k8s-schemas/v$KUBE_VERSION-keda$KEDA_VERSION-cnpg$CNPG_VERSION
PY=${PY:-.venv/bin/python}
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")  # absolute: module_dir runs elsewhere
CHART=charts/turnforge
SKIP_KINDS=Kafka,KafkaNodePool

HELM=$(scripts/go-tool.sh helm)
KUBECONFORM=$(scripts/go-tool.sh kubeconform)

module_dir() {  # the read-only source folder of a Go module, downloaded through the module proxy if needed
  (cd /tmp && GOFLAGS=-mod=mod go mod download -json "$1" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
}
if [ ! -f "$SCHEMAS/.complete" ]; then
  echo "generating Kubernetes $KUBE_VERSION JSON schemas into $SCHEMAS ..."
  k8s=$(module_dir "k8s.io/kubernetes@v$KUBE_VERSION")
  keda=$(module_dir "github.com/kedacore/keda/v2@$KEDA_VERSION")
  cnpg=$(module_dir "github.com/cloudnative-pg/cloudnative-pg@$CNPG_VERSION")
  rm -rf "$SCHEMAS"
  "$PY" charts/k8s_schemas.py "$SCHEMAS" --swagger "$k8s/api/openapi-spec/swagger.json" \
    --crd "$keda/config/crd/bases/keda.sh_scaledobjects.yaml" \
    --crd "$cnpg/config/crd/bases/postgresql.cnpg.io_clusters.yaml"
  touch "$SCHEMAS/.complete"
fi

echo "== hadolint docker/Dockerfile"
"$(dirname "$PY")/hadolint" docker/Dockerfile

echo "== helm lint"
"$HELM" lint --strict "$CHART"

rendered=$(mktemp -d)
trap 'rm -rf "$rendered"' EXIT
for values in "$CHART"/ci/*-values.yaml; do
  name=$(basename "$values" .yaml)
  echo "== helm template + kubeconform: $name"
  "$HELM" lint --strict "$CHART" -f "$values" > /dev/null
  "$HELM" template "tf-$name" "$CHART" --namespace turnforge --kube-version "$KUBE_VERSION" -f "$values" \
    > "$rendered/$name.yaml"
  "$KUBECONFORM" -strict -summary -kubernetes-version "$KUBE_VERSION" -skip "$SKIP_KINDS" \
    -schema-location "$SCHEMAS/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -schema-location "$SCHEMAS/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" \
    "$rendered/$name.yaml"
done

# Without --kube-version Helm uses the Kubernetes version it was built for (scripts/go-tool.sh stamps it as Helm's
# releases do); the chart must render there too.
echo "== helm template without --kube-version"
"$HELM" template tf "$CHART" > /dev/null

echo "== tests/test_chart.py"
"$PY" -m pytest -q -p no:cacheprovider tests/test_chart.py
echo "chart-check passed"
