#!/usr/bin/env bash
# `make cluster-test`: the chart on a real Kubernetes API server, without Docker, a registry or the internet.
#
#  1. Builds the image (docker/Dockerfile with buildah: build-image.sh).
#  2. Starts a cluster with kwokctl's binary runtime: Debian's etcd and Kubernetes v1.33.4's kube-apiserver,
#     kube-controller-manager and kube-scheduler (built once from the Go module proxy by scripts/go-tool.sh), with
#     kwok playing the kubelets of fake nodes: one CPU node and one GPU node (nvidia.com/gpu: 8, tainted).
#  3. Installs the CRDs the chart uses: KEDA's and CloudNativePG's from their Go modules (as chart-check does) and
#     stand-ins for Strimzi's (stand-in-crds.yaml).
#  4. Server-side dry-run of every value set in charts/turnforge/ci/ into a namespace enforcing Pod Security
#     "restricted" (the API server validates every object, CRDs included, and warns about pod templates).
#  5. Installs every value set for real on the fake nodes (two releases of the defaults in one namespace) with
#     `helm install --wait`, and checks: every pod Running on the right node, vLLM pods on the GPU node with their
#     GPUs and RuntimeClass, model cache PVCs bound, hook Jobs gone, topics and groups per release; an upgrade whose
#     new model server pod is rejected (missing RuntimeClass) keeps the old one serving.
#  6. `helm uninstall` of each release, then lists whatever of the release is left (nothing).
#  7. A real node joins: a kubelet with containerd on this machine (real-node.sh). Two releases of the image run on
#     it for real, sharing a broker, PostgreSQL and the local model served on this machine (host_services.py; the
#     chart's external options, as on a CPU cluster without operators): each seed Job's seeds become trajectories,
#     each accepted, rejected or dead-lettered, as `turnforge cluster status` reports; `turnforge cluster collect`
#     writes each release's dataset, which re-validates offline; then `helm uninstall` leaves nothing of them and no
#     container on the node.
#
# Everything it starts (the cluster's processes) is stopped on exit, failure included; a cluster left by an
# interrupted run is deleted first. Work files live in $WORK; logs of a failed run are kept in $WORK.failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=e2e-tests/cluster
# How long the real-pod runs may take: three trajectories, 6-12 minutes on 2 cores with the 1.5B model.
RUN_TIMEOUT_S=${CLUSTER_TEST_RUN_TIMEOUT_S:-1800}
CACHE=${TURNFORGE_CACHE:-$HOME/.cache/turnforge}
WORK=${TURNFORGE_CLUSTER_WORK:-/tmp/turnforge-cluster-test}
NAME=turnforge-ct
# Not the embedded stack's ports (19092, 15432, 18080, 18081, 16686, 4318); kwokctl picks free ones for the rest.
APISERVER_PORT=${TURNFORGE_CLUSTER_PORT:-36443}
KUBE_VERSION=1.33.4
KEDA_VERSION=v2.17.2
CNPG_VERSION=v1.26.1
CHART=charts/turnforge
TAG=0.1.0
PY=${PY:-.venv/bin/python}

started=$(date +%s)
step_started=$started
step() {  # a heading with the time the previous step took
  local now; now=$(date +%s)
  echo "   ($(( now - step_started )) s)"
  step_started=$now
  echo "== $*"
}
fail() { echo "cluster-test FAILED: $*" >&2; exit 1; }

export KWOK_WORKDIR=$WORK/kwok KWOK_KUBE_VERSION=v$KUBE_VERSION KUBECONFIG=$WORK/kubeconfig
HELM=$(scripts/go-tool.sh helm)
KWOKCTL=$(scripts/go-tool.sh kwokctl)
KWOK=$(scripts/go-tool.sh kwok)
K8S=$(scripts/go-tool.sh kubernetes)
ETCD=$(command -v etcd) || fail "etcd is needed: apt-get install etcd-server"
kubectl() { "$K8S/kubectl" "$@"; }
# shellcheck source=e2e-tests/cluster/real-node.sh
source "$HERE/real-node.sh"

cleanup() {
  local rc=$?
  if [ $rc -ne 0 ] && [ -d "$NODE" ]; then  # the node's, the host services' and the pods' logs
    mkdir -p "$WORK.failed"
    cp -r "$NODE"/*.log "$NODE/pod-logs" "$WORK/host"/*.log "$WORK.failed/" 2> /dev/null || true
  fi
  real_node_down
  "$PY" "$HERE/host_services.py" down --work "$WORK/host" 2> /dev/null || true
  # kwokctl stops the processes it started (etcd, the control plane, kwok) and removes the cluster's files.
  if [ -d "$KWOK_WORKDIR/clusters/$NAME" ]; then
    if [ $rc -ne 0 ]; then
      mkdir -p "$WORK.failed"
      cp -r "$KWOK_WORKDIR/clusters/$NAME/logs" "$WORK.failed/" 2>/dev/null || true
      echo "logs of the failed run: $WORK.failed/logs" >&2
    fi
    "$KWOKCTL" delete cluster --name "$NAME" > /dev/null 2>&1 || true
  fi
  rm -rf "$WORK"
  echo "cluster-test $([ $rc -eq 0 ] && echo passed || echo failed) in $(( $(date +%s) - started )) s"
}

# A cluster left by an interrupted run: delete it (and its processes) before starting again.
real_node_down
"$PY" "$HERE/host_services.py" down --work "$WORK/host" 2> /dev/null || true
if [ -d "$KWOK_WORKDIR/clusters/$NAME" ]; then
  "$KWOKCTL" delete cluster --name "$NAME" > /dev/null 2>&1 || true
fi
rm -rf "$WORK" "$WORK.failed"
mkdir -p "$WORK"
trap cleanup EXIT

step "image: docker/Dockerfile with buildah"
if [ "${CLUSTER_TEST_SKIP_IMAGE:-}" = 1 ]; then
  echo "skipped (CLUSTER_TEST_SKIP_IMAGE=1)"
else
  "$HERE/build-image.sh" "$TAG"
  podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "localhost/turnforge/turnforge:$TAG"
  # The image runs: as its unprivileged user, every service importable, the CLI answering. podman uses runc (crun
  # cannot set rlimits here) with limits below this machine's hard ones (podman's defaults exceed them).
  podman run --rm --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 --entrypoint python \
    "localhost/turnforge/turnforge:$TAG" -c "import os, shared.cli.main
for s in ('agent', 'schema_predictor', 'sql_executor', 'task_generator', 'tool_synth', 'user_sim', 'validator'):
    __import__(f'services.{s}.service')
print('image runs as uid', os.getuid(), 'and imports all seven services')"
fi

step "cluster: kwokctl, binary runtime, Kubernetes v$KUBE_VERSION"
"$KWOKCTL" create cluster --name "$NAME" --runtime binary --wait 120s --config "$HERE/kwokctl.yaml" \
  --kube-apiserver-port "$APISERVER_PORT" \
  --etcd-binary "$ETCD" \
  --kube-apiserver-binary "$K8S/kube-apiserver" \
  --kube-controller-manager-binary "$K8S/kube-controller-manager" \
  --kube-scheduler-binary "$K8S/kube-scheduler" \
  --kwok-controller-binary "$KWOK" \
  --kubeconfig "$KUBECONFIG" > "$WORK/kwokctl.log" 2>&1 || { cat "$WORK/kwokctl.log" >&2; fail "kwokctl"; }
# On a busy machine kube-controller-manager or kube-scheduler can give up before the API server's start-up hooks
# (RBAC bootstrap) finish, and nothing restarts them: then restart the cluster (etcd keeps what is bootstrapped).
control_plane_running() {
  local pid_file
  for pid_file in "$KWOK_WORKDIR/clusters/$NAME/pids/"*.pid; do
    kill -0 "$(cat "$pid_file")" 2> /dev/null || { echo "$(basename "$pid_file" .pid) exited"; return 1; }
  done
}
for attempt in 1 2 3; do
  for _ in $(seq 120); do kubectl get --raw /readyz > /dev/null 2>&1 && break; sleep 1; done
  sleep 10  # the controllers' own start-up check against the API server
  control_plane_running && break
  [ "$attempt" = 3 ] && fail "the control plane does not stay up"
  echo "restarting the cluster"
  "$KWOKCTL" stop cluster --name "$NAME" > /dev/null 2>&1
  "$KWOKCTL" start cluster --name "$NAME" --wait 120s > /dev/null 2>&1
done
kubectl version 2>/dev/null | sed -n 's/^Server Version: /server /p'
kubectl apply -f "$HERE/fake-cluster.yaml" > /dev/null
kubectl wait --for=condition=Ready node --all --timeout=60s > /dev/null
kubectl get nodes -L nvidia.com/gpu.product \
  -o custom-columns='NODE:.metadata.name,GPUS:.status.allocatable.nvidia\.com/gpu,CPU:.status.allocatable.cpu,TAINTS:.spec.taints[*].key'

step "CRDs: KEDA $KEDA_VERSION, CloudNativePG $CNPG_VERSION (from their Go modules), Strimzi stand-ins"
module_dir() {  # the read-only source folder of a Go module, downloaded through the module proxy if needed
  (cd /tmp && GOFLAGS=-mod=mod go mod download -json "$1" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
}
keda=$(module_dir "github.com/kedacore/keda/v2@$KEDA_VERSION")
cnpg=$(module_dir "github.com/cloudnative-pg/cloudnative-pg@$CNPG_VERSION")
kubectl apply --server-side -f "$keda/config/crd/bases/keda.sh_scaledobjects.yaml" \
  -f "$cnpg/config/crd/bases/postgresql.cnpg.io_clusters.yaml" -f "$HERE/stand-in-crds.yaml" > /dev/null
# A CRD has no conditions for a moment after it is created, which `kubectl wait` takes for an error: retry.
for _ in $(seq 30); do
  kubectl wait --for=condition=Established crd --all --timeout=30s > /dev/null 2>&1 && break
  sleep 1
done
kubectl wait --for=condition=Established crd --all --timeout=5s

# Namespaces enforce Pod Security "restricted" as a hardened cluster would: a pod that fails it is never created.
namespace() {
  kubectl create namespace "$1" > /dev/null
  kubectl label namespace "$1" pod-security.kubernetes.io/enforce=restricted \
    pod-security.kubernetes.io/warn=restricted > /dev/null
}

step "server-side dry-run of every value set (Pod Security restricted enforced)"
namespace tf-dryrun
for values in "$CHART"/ci/*-values.yaml; do
  set_name=$(basename "$values" -values.yaml)
  "$HELM" template "tf-$set_name" "$CHART" --namespace tf-dryrun -f "$values" > "$WORK/$set_name.yaml"
  if ! kubectl apply --dry-run=server -n tf-dryrun -f "$WORK/$set_name.yaml" > "$WORK/$set_name.dryrun" 2>&1; then
    cat "$WORK/$set_name.dryrun" >&2; fail "server-side dry-run of $set_name"
  fi
  if grep -i "warning" "$WORK/$set_name.dryrun"; then fail "$set_name: the API server warned (above)"; fi
  echo "$set_name: $(grep -c . "$WORK/$set_name.dryrun") objects accepted, no warnings"
done

# Storage for the model caches: nothing provisions volumes on fake nodes, so each claim gets a volume made for it.
volumes() {  # volumes CLASS SIZE COUNT
  for i in $(seq 1 "$3"); do
    cat <<EOF
apiVersion: v1
kind: PersistentVolume
metadata: {name: cache-$1-$RANDOM$RANDOM, labels: {turnforge-cluster-test: volume}}
spec:
  capacity: {storage: $2}
  accessModes: [ReadWriteOnce]
  storageClassName: $1
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: /tmp/unused}
---
EOF
  done
}
{ volumes standard 100Gi 3; volumes fast-ssd 200Gi 2; } | kubectl apply -f - > /dev/null

step "install on the fake nodes: every value set, two releases of the defaults in one namespace"
namespace tf-fake
# Secrets the external value set expects to exist (created by whoever runs Kafka and PostgreSQL elsewhere).
kubectl -n tf-fake create secret generic turnforge-postgres \
  --from-literal=dsn=postgresql://turnforge@db.example:5432/turnforge > /dev/null
kubectl -n tf-fake create secret generic hf-token --from-literal=HF_TOKEN=unused > /dev/null
releases=(tf-a:default tf-b:default tf-gpu:gpu-tp2 tf-ext:external)
for entry in "${releases[@]}"; do
  release=${entry%%:*} set_name=${entry#*:}
  # The README's flags: Helm waits for every Deployment and PVC, then runs the topic and seed Jobs and deletes them.
  if ! "$HELM" install "$release" "$CHART" -n tf-fake -f "$CHART/ci/$set_name-values.yaml" \
      --set image.repository=localhost/turnforge/turnforge --wait --timeout 5m > "$WORK/$release.install" 2>&1; then
    cat "$WORK/$release.install" >&2; fail "helm install $release"
  fi
  echo "$release ($set_name): installed"
done

step "checks on the installed releases"
pods_of() {  # NAME PHASE NODE RUNTIMECLASS GPUS for a release's pods
  kubectl -n tf-fake get pods -l "app.kubernetes.io/instance=$1" --no-headers \
    -o custom-columns='NAME:.metadata.name,PHASE:.status.phase,NODE:.spec.nodeName,RUNTIME:.spec.runtimeClassName,GPUS:.spec.containers[0].resources.limits.nvidia\.com/gpu'
}
for entry in "${releases[@]}"; do
  release=${entry%%:*}
  echo "-- $release: resources"
  kubectl -n tf-fake get deploy,svc,cm,secret,pvc,job,scaledobjects.keda.sh,clusters.postgresql.cnpg.io,kafkas.kafka.strimzi.io,kafkanodepools.kafka.strimzi.io \
    -l "app.kubernetes.io/instance=$release" --no-headers 2>/dev/null | awk '{print "   " $1}'
  echo "-- $release: pods (name, phase, node, runtime class, GPUs)"
  pods_of "$release" | sed 's/^/   /'
  pods_of "$release" | awk '$2 != "Running" {bad=1} END {exit bad}' || fail "$release: a pod is not Running"
  # Model servers on the GPU node with their GPUs; everything else off it (the taint keeps it for GPU work).
  pods_of "$release" | awk '/-vllm-/ && ($3 != "fake-gpu-0" || $5 == "<none>") {bad=1}
                           !/-vllm-/ && $3 == "fake-gpu-0" {bad=1} END {exit bad}' \
    || fail "$release: a pod is on the wrong node"
  # Hook Jobs are deleted once they succeeded; only their pods' records could be left, and are not.
  [ -z "$(kubectl -n tf-fake get jobs -l "app.kubernetes.io/instance=$release" -o name)" ] \
    || fail "$release: hook Jobs left after they succeeded"
  grep -q "produce-seed\|seed" "$WORK/$release.install" || true
done
pods_of tf-gpu | awk '/-vllm-judge-/ {found=1; if ($4 != "nvidia" || $5 != 2) exit 1} END {exit !found}' \
  || fail "tf-gpu: the judge should run with RuntimeClass nvidia on 2 GPUs"
bound=$(kubectl -n tf-fake get pvc --no-headers -o custom-columns=S:.status.phase | sort | uniq -c | xargs)
echo "model cache claims: $bound"
kubectl -n tf-fake get pvc --no-headers -o custom-columns=S:.status.phase | grep -qv Bound && fail "a PVC is not Bound"
# Releases sharing a broker keep to their own topics and consumer groups (groups are named after the topic prefix).
prefixes=$(for r in tf-a tf-b; do kubectl -n tf-fake get cm "$r-turnforge-config" -o jsonpath='{.data.config\.yaml}' \
  | grep -E '^  topic_prefix:' | tr -d ' \n'; echo; done)
echo "$prefixes" | sed 's/^/   /'
[ "$(echo "$prefixes" | sort -u | wc -l)" = 2 ] || fail "tf-a and tf-b share topics or consumer groups"

# `turnforge cluster status` reads the release's own config (its ConfigMap) and its Deployments from the API server;
# no broker is reachable from here, so it reports the lag as unavailable.
COLUMNS=120 "$PY" -m shared.cli.main cluster status --release tf-a --namespace tf-fake > "$WORK/status.txt" \
  2> "$WORK/status.err" || true
sed 's/^/   /' "$WORK/status.txt"
grep -q "tool-synth .*1/1" "$WORK/status.txt" && grep -q "Qwen/Qwen3-8B" "$WORK/status.txt" \
  && grep -q "consumer lag and seeds unavailable" "$WORK/status.txt" \
  || fail "cluster status did not report the release's services, model server and (unreachable) broker"

step "upgrade whose new model server pod is rejected (no such RuntimeClass): the old one keeps serving"
before=$(kubectl -n tf-fake get pods -l app.kubernetes.io/instance=tf-a,app.kubernetes.io/component=model-server \
  -o jsonpath='{.items[*].metadata.name}')
"$HELM" upgrade tf-a "$CHART" -n tf-fake --reuse-values --set modelServers.runtimeClassName=missing \
  > "$WORK/tf-a.upgrade" 2>&1 || { cat "$WORK/tf-a.upgrade" >&2; fail "helm upgrade tf-a"; }
sleep 5
events=$(kubectl -n tf-fake get events --field-selector reason=FailedCreate -o jsonpath='{.items[*].message}')
echo "$events" | grep -q 'RuntimeClass "missing" not found' || fail "expected the API server to reject the pod"
after=$(kubectl -n tf-fake get pods -l app.kubernetes.io/instance=tf-a,app.kubernetes.io/component=model-server \
  --field-selector=status.phase=Running -o jsonpath='{.items[*].metadata.name}')
echo "rejected: $(echo "$events" | grep -o 'RuntimeClass "missing" not found' | head -1); still serving: $after"
[ -n "$after" ] && [ "$after" = "$before" ] || fail "the old model server pod is gone"

step "helm uninstall: nothing of any release is left"
kinds=$(kubectl api-resources --verbs=list --namespaced -o name | grep -v '^events' | paste -sd, -)
for entry in "${releases[@]}"; do
  release=${entry%%:*}
  "$HELM" uninstall "$release" -n tf-fake --wait --timeout 2m > /dev/null
done
# Labelled objects of any kind, and anything named after a release (a pod of a deleted hook Job would be).
sleep 2
left=$(kubectl -n tf-fake get "$kinds" -l app.kubernetes.io/name=turnforge -o name 2>/dev/null;
       kubectl -n tf-fake get pods,jobs,configmaps,pvc -o name | grep -E '/tf-(a|b|gpu|ext)-' || true)
echo "left after uninstall: ${left:-nothing}"
[ -z "$left" ] || fail "helm uninstall left resources behind"

step "a real node: kubelet and containerd on this machine, pods on a CNI bridge ($POD_CIDR)"
real_node_up "localhost/turnforge/turnforge:$TAG"
kubectl get node "$NODE_NAME" --no-headers \
  -o custom-columns='NODE:.metadata.name,STATUS:.status.conditions[?(@.type=="Ready")].type,IP:.status.addresses[0].address,RUNTIME:.status.nodeInfo.containerRuntimeVersion,CPU:.status.allocatable.cpu,MEMORY:.status.allocatable.memory' \
  | sed 's/^/   /'

step "broker, PostgreSQL and the local model on this machine, at the node's address"
endpoints=$("$PY" "$HERE/host_services.py" up --work "$WORK/host" --host "$(node_ip)" --pods "$POD_CIDR")
endpoint() { echo "$endpoints" | "$PY" -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
echo "   broker $(endpoint bootstrap), PostgreSQL $(endpoint dsn), model $(endpoint model) at $(endpoint model_url)"

step "two releases running for real on that node, sharing the broker: install, seed Job, the run"
# Two, because a second release on one broker once never consumed its seeds (its groups were the first's).
namespace tf-real
real_releases=(tf-real:2 tf-real-b:1)  # release:trajectories
for entry in "${real_releases[@]}"; do
  release=${entry%%:*}
  if ! "$HELM" install "$release" "$CHART" -n tf-real -f "$HERE/real-node-values.yaml" \
      --set image.repository=localhost/turnforge/turnforge \
      --set kafka.external.bootstrapServers="$(endpoint bootstrap)" --set postgresql.external.dsn="$(endpoint dsn)" \
      --set externalModel.baseUrl="$(endpoint model_url)" --set externalModel.model="$(endpoint model)" \
      --set seedJob.seeds.generation.num_trajectories="${entry#*:}" \
      --wait --timeout 10m > "$WORK/$release.install" 2>&1; then
    cat "$WORK/$release.install" >&2; kubectl -n tf-real get pods -o wide >&2; fail "helm install $release"
  fi
  sed -n '/produced seed/p' "$WORK/$release.install" | sed "s/^/   $release seed Job: /"
  echo "-- $release: resources"
  kubectl -n tf-real get deploy,svc,cm,secret,pvc,job -l "app.kubernetes.io/instance=$release" --no-headers \
    2>/dev/null | awk '{print "   " $1}'
done
echo "-- pods (name, phase, IP, node)"
kubectl -n tf-real get pods -o wide --no-headers | awk '{print "   " $1, $3, $6, $7}'
real_status() { "$PY" -m shared.cli.main cluster status --namespace tf-real --release "$@"; }
in_flight() {  # trajectories seeded and in flight, or nothing if the status cannot be read
  real_status "$1" --json 2>> "$WORK/status.err" | "$PY" -c "import json, sys
seeds = json.load(sys.stdin)['seeds']
print(sum(s['trajectories'] for s in seeds), sum(s['in_flight'] for s in seeds))" 2>> "$WORK/status.err"
}
deadline=$(( $(date +%s) + RUN_TIMEOUT_S ))
for entry in "${real_releases[@]}"; do
  release=${entry%%:*}
  while :; do
    progress=$(in_flight "$release") || progress=""
    # shellcheck disable=SC2086
    set -- $progress
    if [ -n "$progress" ] && [ "$1" = "${entry#*:}" ] && [ "$2" = 0 ]; then break; fi
    if [ "$(date +%s)" -gt "$deadline" ]; then
      real_status "$release" >&2 || true; tail -20 "$WORK/status.err" >&2
      for pod in $(kubectl -n tf-real get pods -o name); do kubectl -n tf-real logs --tail 20 "$pod" >&2; done
      fail "$release: the run did not finish in $RUN_TIMEOUT_S s"
    fi
    sleep 15
  done
  COLUMNS=120 real_status "$release" | sed 's/^/   /'
  # The finished run's outcomes, read once: each seed's trajectories all ended; the accepted ones are collected.
  real_status "$release" --json > "$WORK/$release.status.json"
  accepted=$("$PY" -c "import json, sys
accepted = 0
for s in json.load(open(sys.argv[1]))['seeds']:
    ended = s['accepted'] + s['rejected'] + s['dead_lettered']
    print(f\"   {s['seed_id']}: seeded {s['trajectories']} = accepted {s['accepted']} + rejected {s['rejected']}\"
          f\" + dead-lettered {s['dead_lettered']}\", file=sys.stderr)
    assert ended == s['trajectories'], s
    accepted += s['accepted']
print(accepted)" "$WORK/$release.status.json") || fail "$release: a trajectory did not end"
  # What a trainer takes away: the release's dataset, collected from its topics, re-validated offline.
  "$PY" -m shared.cli.main cluster collect --namespace tf-real --release "$release" --out "$WORK/$release-out" \
    | sed 's/^/   /'
  [ "$(grep -c . "$WORK/$release-out/dataset.jsonl")" = "$accepted" ] || fail "$release: collected dataset != accepted"
  if [ "$accepted" -gt 0 ]; then
    TURNFORGE_POSTGRES__DSN=$(endpoint local_dsn) "$PY" -m shared.cli.main validate \
      "$WORK/$release-out/dataset.jsonl" > "$WORK/$release.validate" || { cat "$WORK/$release.validate" >&2;
      fail "$release: a collected record does not re-validate"; }
    tail -1 "$WORK/$release.validate" | sed 's/^/   /'
  fi
done

step "helm uninstall of the real releases: nothing of them is left, no container on the node"
for entry in "${real_releases[@]}"; do
  "$HELM" uninstall "${entry%%:*}" -n tf-real --wait --timeout 2m > /dev/null
done
# Helm waits for the objects it deleted; their pods then stop (SIGTERM, each service leaves its consumer group).
stopping_since=$(date +%s)
kubectl -n tf-real wait --for=delete pod -l app.kubernetes.io/name=turnforge --timeout=120s > /dev/null 2>&1 || true
echo "pods stopped $(( $(date +%s) - stopping_since )) s after the uninstall"
left=$(kubectl -n tf-real get "$kinds" -l app.kubernetes.io/name=turnforge -o name 2>/dev/null;
       kubectl -n tf-real get pods,jobs,configmaps,secrets,pvc -o name | grep -E '/tf-real-' || true)
echo "left after uninstall: ${left:-nothing}"
[ -z "$left" ] || fail "helm uninstall left resources behind"
running() { ctr_ tasks ls | awk 'NR > 1 && $3 == "RUNNING"' | wc -l; }
for _ in $(seq 30); do [ "$(running)" = 0 ] && break; sleep 2; done
echo "containers running on the node: $(running)"
[ "$(running)" = 0 ] || fail "the node still runs containers of the releases"

step "done"
