#!/usr/bin/env bash
# go-tool.sh NAME: print the path of a pinned Go tool, building it with the Go toolchain first if it is not cached.
# Tools live in $TURNFORGE_TOOLS (default ~/.cache/turnforge/bin), so CI and developers build each once.
#   helm         Helm 3 (chart lint and template)
#   kubeconform  Kubernetes manifest validation
#   jaeger       Jaeger v2 all-in-one (the tracing e2e test stores spans in it and queries them)
set -euo pipefail
BIN=${TURNFORGE_TOOLS:-$HOME/.cache/turnforge/bin}
case "${1:-}" in
  helm)        module=helm.sh/helm/v3 version=v3.21.4 package=./cmd/helm ;;
  kubeconform) module=github.com/yannh/kubeconform version=v0.8.0 package=./cmd/kubeconform ;;
  # Jaeger v2's module versions are v1.x (v1.76.0 is Jaeger v2.13); its go.mod has replace directives, which
  # `go install module@version` refuses, so it is built inside a copy of the module instead.
  jaeger)      module=github.com/jaegertracing/jaeger version=v1.76.0 package=./cmd/jaeger ;;
  *) echo "usage: $0 helm|kubeconform|jaeger" >&2; exit 2 ;;
esac
name=$1
target="$BIN/$name"
if [ -x "$target" ] && [ "$(cat "$BIN/.$name.version" 2>/dev/null)" = "$module@$version" ]; then
  echo "$target"
  exit 0
fi
command -v go > /dev/null || { echo "go is needed to build $name" >&2; exit 3; }
mkdir -p "$BIN"
start=$(date +%s)
echo "building $name ($module@$version) into $BIN ..." >&2
if [ "$name" = jaeger ]; then
  src=$(cd /tmp && GOFLAGS=-mod=mod go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  work=$(mktemp -d)
  trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
  cp -r "$src/." "$work/" && chmod -R u+w "$work"
  (cd "$work" && go build -trimpath -o "$target.tmp" "$package")
else
  (cd /tmp && GOBIN="$BIN" GOFLAGS=-trimpath go install "$module/${package#./}@$version")
  mv "$target" "$target.tmp"
fi
mv "$target.tmp" "$target"
echo "$module@$version" > "$BIN/.$name.version"
echo "built $name in $(( $(date +%s) - start )) s" >&2
echo "$target"
