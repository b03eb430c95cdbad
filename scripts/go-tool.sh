#!/usr/bin/env bash
# go-tool.sh NAME: print the path of a pinned Go tool, building it with the Go toolchain first if it is not cached.
# Tools live in $TURNFORGE_TOOLS (default ~/.cache/turnforge/bin), so CI and developers build each once.
#   helm         Helm 3 (chart lint and template)
#   kubeconform  Kubernetes manifest validation
#   jaeger       Jaeger v2 all-in-one (the tracing e2e test stores spans in it and queries them)
#   kwok         kwok's fake-node controller, and kwokctl, which starts a cluster from local binaries (cluster test)
#   kwokctl
#   kubernetes   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kubectl, built together into
#                $BIN/kubernetes-VERSION/; prints that folder (cluster test; about 12 minutes once on 2 cores)
set -euo pipefail
BIN=${TURNFORGE_TOOLS:-$HOME/.cache/turnforge/bin}
case "${1:-}" in
  # Stamped as Helm's release builds are: without it `helm template` assumes Kubernetes v1.20 (not the v1.36 of the
  # client-go it is built with) and rejects a chart asking for >=1.27 unless given --kube-version.
  helm)        module=helm.sh/helm/v3 version=v3.21.4 package=./cmd/helm
               ldflags="-X helm.sh/helm/v3/internal/version.version=v3.21.4"
               for pkg in chartutil lint/rules; do
                 ldflags="$ldflags -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/$pkg.k8sVersionMinor=36"
               done ;;
  kubeconform) module=github.com/yannh/kubeconform version=v0.8.0 package=./cmd/kubeconform ;;
  # Jaeger v2's module versions are v1.x (v1.76.0 is Jaeger v2.13); its go.mod has replace directives, which
  # `go install module@version` refuses, so it is built inside a copy of the module instead.
  jaeger)      module=github.com/jaegertracing/jaeger version=v1.76.0 package=./cmd/jaeger ;;
  kwok)        module=sigs.k8s.io/kwok version=v0.8.0 package=./cmd/kwok ;;
  kwokctl)     module=sigs.k8s.io/kwok version=v0.8.0 package=./cmd/kwokctl ;;
  # Kubernetes publishes no binaries to any registry this machine reaches, but its source is a Go module. Its go.mod
  # points the k8s.io/* staging modules at ./staging, which the module zip lacks, so it is built inside a copy whose
  # replace lines name the published staging modules (v0.33.4 for v1.33.4) instead.
  kubernetes)  module=k8s.io/kubernetes version=v1.33.4 package="kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl" ;;
  *) echo "usage: $0 helm|kubeconform|jaeger|kwok|kwokctl|kubernetes" >&2; exit 2 ;;
esac
name=$1
target="$BIN/$name"
[ "$name" = kubernetes ] && target="$BIN/kubernetes-$version"
# The stamped helm has a name of its own, so checkouts whose go-tool.sh builds it unstamped do not keep replacing it.
[ "$name" = helm ] && target="$BIN/helm-$version-kube1.36"
stamp="$module@$version${ldflags:+ $ldflags}"
record="$BIN/.$(basename "$target").version"
if [ -e "$target" ] && [ "$(cat "$record" 2>/dev/null)" = "$stamp" ]; then
  echo "$target"
  exit 0
fi
command -v go > /dev/null || { echo "go is needed to build $name" >&2; exit 3; }
mkdir -p "$BIN"
start=$(date +%s)
echo "building $name ($module@$version) into $BIN ..." >&2
if [ "$name" = kubernetes ]; then
  src=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  work=$(mktemp -d)
  trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
  cp -r "$src/." "$work/" && chmod -R u+w "$work"
  staging=v0${version#v1}                 # v1.33.4 -> v0.33.4
  minor=$(echo "$version" | cut -d. -f2)  # stamped in: helm checks the chart's kubeVersion against the server's
  sed -i -E "s#^(\s*)(k8s\.io/[a-z0-9-]+) => \./staging/src/k8s\.io/[a-z0-9-]+#\1\2 => \2 $staging#" "$work/go.mod"
  rm -f "$work/go.work" "$work/go.work.sum"
  mkdir -p "$target.tmp"
  for binary in $package; do
    echo "  go build ./cmd/$binary" >&2
    (cd "$work" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" -o "$target.tmp/$binary" "./cmd/$binary")
  done
  rm -rf "$target"
elif [ "$name" = jaeger ]; then
  src=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  work=$(mktemp -d)
  trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
  cp -r "$src/." "$work/" && chmod -R u+w "$work"
  (cd "$work" && go build -trimpath -o "$target.tmp" "$package")
else
  gobin=$(mktemp -d)
  (cd /tmp && GOBIN="$gobin" GOFLAGS=-trimpath go install -ldflags "${ldflags:-}" "$module/${package#./}@$version")
  mv "$gobin/$(basename "$package")" "$target.tmp" && rmdir "$gobin"
fi
mv "$target.tmp" "$target"
echo "$stamp" > "$record"
echo "built $name in $(( $(date +%s) - start )) s" >&2
echo "$target"
