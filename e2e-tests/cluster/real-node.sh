# A real node for the cluster test: a kubelet and containerd on this machine, pods on a CNI bridge.
# Sourced by cluster-test.sh, which sets WORK, KUBECONFIG, K8S (the Kubernetes binaries), HERE and kubectl.
#
# Everything lives under $WORK/node (containerd's root and state, the kubelet's root, the CNI IP leases) and is
# stopped by real_node_down, failure included. Choices that make it run here, none of which a production node needs:
# cgroup v1 with the cgroupfs driver (no systemd); containerd may not lower its own OOM score (not permitted here);
# the pause image is built from a few lines of Go (no registry to pull registry.k8s.io/pause from); the images are
# imported into containerd from podman's store instead of pulled.

NODE_NAME=tf-real-0
POD_CIDR=10.244.0.0/24
BRIDGE=tfct0
PAUSE_IMAGE=localhost/turnforge/pause:1
NODE=$WORK/node

node_ip() {  # the address of the interface the default route leaves by: what the pods reach this machine at
  ip -4 route get 1.1.1.1 | sed -n 's/.* src \([0-9.]*\).*/\1/p'
}

ctr_() { ctr --address "$NODE/containerd.sock" -n k8s.io "$@"; }

pause_image() {  # a static binary that waits for SIGTERM: all a pod sandbox needs
  podman image exists "$PAUSE_IMAGE" && return
  local src=$NODE/pause-src
  mkdir -p "$src"
  cat > "$src/main.go" <<'EOF'
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
EOF
  (cd "$src" && go mod init pause > /dev/null 2>&1 && CGO_ENABLED=0 go build -ldflags "-s -w" -o pause .)
  local c; c=$(buildah from scratch)
  buildah copy "$c" "$src/pause" /pause > /dev/null
  buildah config --entrypoint '["/pause"]' --user 65535:65535 "$c"
  buildah commit -q "$c" "$PAUSE_IMAGE" > /dev/null
  buildah rm "$c" > /dev/null
}

real_node_up() {  # real_node_up IMAGE: start containerd and a kubelet, import IMAGE, wait until the node is Ready
  local image=$1
  [ "$(id -u)" = 0 ] || { echo "a real node needs root (kubelet, containerd, the CNI bridge)" >&2; return 1; }
  mkdir -p "$NODE/cni" "$NODE/kubelet"
  pause_image
  cat > "$NODE/containerd.toml" <<EOF
version = 2
root = "$NODE/containerd/root"
state = "$NODE/containerd/state"
[grpc]
  address = "$NODE/containerd.sock"
[ttrpc]
  address = "$NODE/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
EOF
  cat > "$NODE/cni/10-turnforge.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "turnforge-cluster-test", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
            "dataDir": "$NODE/ipam"}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
EOF
  setsid containerd --config "$NODE/containerd.toml" > "$NODE/containerd.log" 2>&1 < /dev/null &
  echo $! > "$NODE/containerd.pid"
  for _ in $(seq 30); do ctr_ version > /dev/null 2>&1 && break; sleep 1; done
  # podman's store holds the images; containerd takes them as docker archives (names kept, nothing pulled).
  podman save --format docker-archive -o "$NODE/pause.tar" "$PAUSE_IMAGE" 2> /dev/null
  podman save --format docker-archive -o "$NODE/image.tar" "$image" 2> /dev/null
  ctr_ images import "$NODE/pause.tar" > /dev/null
  ctr_ images import "$NODE/image.tar" > /dev/null
  rm -f "$NODE/pause.tar" "$NODE/image.tar"
  cat > "$NODE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$NODE/containerd.sock
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}}
authorization: {mode: AlwaysAllow}
readOnlyPort: 0
port: 10350
healthzPort: 10358
podLogsDir: $NODE/pod-logs
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: /etc/resolv.conf
EOF
  # The admin kubeconfig stands in for a node's bootstrap credentials.
  setsid "$K8S/kubelet" --config "$NODE/kubelet.yaml" --kubeconfig "$KUBECONFIG" --hostname-override "$NODE_NAME" \
    --node-ip "$(node_ip)" --root-dir "$NODE/kubelet" --cert-dir "$NODE/kubelet/pki" \
    > "$NODE/kubelet.log" 2>&1 < /dev/null &
  echo $! > "$NODE/kubelet.pid"
  for _ in $(seq 60); do kubectl get node "$NODE_NAME" > /dev/null 2>&1 && break; sleep 1; done
  kubectl wait --for=condition=Ready "node/$NODE_NAME" --timeout=120s > /dev/null
}

# Stop pods, kubelet and containerd; remove the bridge and the pods' NAT rules. Best effort, in a subshell without
# errexit: it runs on the way out of a failed test too, and whatever is already gone is fine.
real_node_down() (
  set +e
  [ -d "$NODE" ] || exit 0
  local pid
  for pid in kubelet containerd; do
    [ -f "$NODE/$pid.pid" ] && kill "$(cat "$NODE/$pid.pid")" 2> /dev/null
  done
  sleep 2
  # Containers outlive containerd in their shims: kill the shims of this containerd (their processes go with them).
  pkill -KILL -f "containerd-shim-runc-v2 .*-address $NODE/containerd.sock" 2> /dev/null
  pkill -KILL -f "^containerd --config $NODE/containerd.toml" 2> /dev/null
  sleep 1
  # What a kubelet would have torn down pod by pod: network namespaces, mounts, the bridge, NAT rules for its IPs.
  local netns
  for netns in $(ip netns list 2> /dev/null | awk '/^cni-/ {print $1}'); do
    ip netns pids "$netns" 2> /dev/null | grep -q . || ip netns delete "$netns" 2> /dev/null
  done
  awk -v dir="$NODE" '$2 ~ "^" dir {print $2}' /proc/mounts | sort -r | xargs -r -n1 umount -l 2> /dev/null
  ip link delete "$BRIDGE" 2> /dev/null
  # The bridge plugin's NAT chains carry the network's name; a pod torn down halfway can leave one empty.
  local chain
  for chain in $(iptables -t nat -S 2> /dev/null | awk '/^-N CNI-/ {print $2}'); do
    if iptables -t nat -S "$chain" | grep -q 'turnforge-cluster-test' \
       || [ "$(iptables -t nat -S "$chain" | wc -l)" = 1 ]; then
      iptables -t nat -S POSTROUTING | grep -- "-j $chain" | sed 's/^-A/-D/' | xargs -r -L1 iptables -t nat
      iptables -t nat -F "$chain" && iptables -t nat -X "$chain"
    fi
  done 2> /dev/null
  exit 0
)
