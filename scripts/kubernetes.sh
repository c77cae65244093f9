#!/usr/bin/env bash
# kubernetes.sh - build and start a real single-node Kubernetes cluster on
# loopback and print how to reach it.
#
# Used by the Kubernetes driver's tests and CI:
#
#   eval "$(scripts/kubernetes.sh)"   # sets KUBECONFIG and PATH (kubectl)
#   scripts/kubernetes.sh stop        # stop it and remove what it left
#   scripts/kubernetes.sh restart-apiserver 5
#                                     # kill the API server (SIGKILL), wait 5s,
#                                     # start it again, wait until ready: for
#                                     # fault-injection tests
#
# Needs Debian (bookworm) as root: nothing prebuilt can be downloaded, so
# everything is built from the Go module proxy or taken from Debian.
#
#   1. Debian's containerd, runc, containernetworking-plugins, openssl and
#      gcc are installed when missing.
#   2. kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and
#      kubectl are built from tools/kubernetes (its go.mod pins the version,
#      stamped into the binaries with -ldflags), etcd from tools/etcd, into
#      $STATE/bin. A binary built from the same go.mod and go.sum is kept.
#   3. A CA, the API server's certificate (SANs 127.0.0.1, localhost and the
#      first service IP), a service-account key pair and a static token file
#      (users admin in system:masters, system:node:localhost,
#      system:kube-controller-manager, system:kube-scheduler) are made once
#      with openssl and kept, so the printed KUBECONFIG stays valid across
#      stop and start.
#   4. etcd, the API server (--authorization-mode=Node,RBAC, admission
#      NodeRestriction), the controller manager (no cloud provider,
#      --enable-hostpath-provisioner=true), the scheduler, a containerd of
#      its own and the kubelet (node name localhost, cgroupfs, cgroup v1
#      allowed, swap allowed, podPidsLimit 256, image garbage collection
#      off) start in the background, each on its own 127.0.0.1 port but the
#      kubelet's. Pods get addresses from a bridge CNI network with
#      host-local IPAM and no NAT. The API server proxies to no loopback
#      address (node proxy, configz), and the kubelet refuses a loopback node
#      IP: the node's address is the bridge's (the pods' gateway, 10.244.0.1
#      by default), made before the kubelet starts, which only this host and
#      its pods reach, and the kubelet listens there.
#   5. The sandbox image (a static `pause` built with gcc) and the workload
#      images resilient-workload:latest and :health (from Docker, built by
#      scripts/provision.sh when Docker lacks them) are imported into
#      containerd's k8s.io namespace, where they are named
#      docker.io/library/resilient-workload:TAG, which is what a pod's image
#      resilient-workload:TAG resolves to (use imagePullPolicy Never or
#      IfNotPresent: there is no registry).
#   6. A default StorageClass `standard` (provisioner kubernetes.io/host-path,
#      volumes under /tmp/hostpath_pv) is created; the script waits until the
#      node is Ready and a test pod of the workload image Runs, then deletes
#      the pod.
#
# Safe to run repeatedly: when the API server answers, the node is Ready and
# the binaries match tools/, a run only checks that containerd holds Docker's
# current workload images and prints the two lines. Otherwise whatever is
# left is stopped and the cluster starts afresh (empty etcd).
#
# `stop` stops what this script started (pid files, the containerd shims of
# this containerd), unmounts what is left under its directories, deletes the
# pod bridge, the unused cni- network namespaces, the kubepods cgroups, the
# kubelet's iptables chains, the pod logs and volumes, and the cluster's
# state (etcd, containerd's store). Binaries, PKI and kubeconfigs are kept.
# dockerd, Docker's containerd and Podman are never touched.
#
# While dockerd runs, its iptables FORWARD policy DROP blocks traffic between
# pods (host-to-pod traffic is not affected); a test that needs pod-to-pod
# traffic adds its own rule and removes it afterwards, e.g.
#   iptables -I FORWARD -i resilient-k8s0 -o resilient-k8s0 -j ACCEPT
# There is no kube-proxy (Service IPs do not route), no cluster DNS and no
# NetworkPolicy enforcement.
#
# The kubelet sets a few kernel tunables when it starts (vm.overcommit_memory,
# vm.panic_on_oom, kernel.panic, kernel.panic_on_oops, kernel.keys.*); they
# are put back to the host's values as soon as the node is Ready.
#
# Measured on 2 cores shared with other builds (load average 15-30): the
# first run with a cold Go build cache took 25m40s (Kubernetes 22m43s, etcd
# 2m37s; about 12 minutes on 2 idle cores); a start with the binaries built
# 12-20s (node Ready about 6s after launch); a run against the running
# cluster 0.5s; stop about 10s.
#
# Environment:
#   RESILIENT_K8S_STATE        state directory: binaries, PKI, kubeconfigs,
#                              logs, etcd, kubelet, containerd store
#                              (default /var/lib/resilient-kubernetes)
#   RESILIENT_K8S_RUN          containerd's socket and state
#                              (default /run/resilient-containerd)
#   RESILIENT_K8S_API_PORT     API server port on 127.0.0.1 (default 6443)
#   RESILIENT_K8S_ETCD_PORT    etcd client port on 127.0.0.1, peer port is
#                              the next one (default 2379)
#   RESILIENT_K8S_POD_SUBNET   pod subnet of the bridge (default 10.244.0.0/24)
#   RESILIENT_K8S_SERVICE_SUBNET  service IP range (default 10.96.0.0/24)
#   Fixed ports: kubelet 10250 on the node's address, on 127.0.0.1 the
#   kubelet's healthz 10248, the controller manager 10257, the scheduler
#   10259.
#
# stdout is exactly two lines,
#   export KUBECONFIG=<state>/admin.kubeconfig
#   export PATH=<state>/bin:$PATH
# (nothing for `stop`); progress goes to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${RESILIENT_K8S_STATE:-/var/lib/resilient-kubernetes}
RUN=${RESILIENT_K8S_RUN:-/run/resilient-containerd}
API_PORT=${RESILIENT_K8S_API_PORT:-6443}
ETCD_PORT=${RESILIENT_K8S_ETCD_PORT:-2379}
ETCD_PEER_PORT=$((ETCD_PORT + 1))
POD_SUBNET=${RESILIENT_K8S_POD_SUBNET:-10.244.0.0/24}
# first_ip CIDR prints the first host address of CIDR (aligned on a byte).
first_ip() {
	local base=${1%/*}
	echo "${base%.*}.$((${base##*.} + 1))"
}
# The node's address: the pod bridge's (the pods' gateway).
NODE_IP=$(first_ip "$POD_SUBNET")
SERVICE_SUBNET=${RESILIENT_K8S_SERVICE_SUBNET:-10.96.0.0/24}

BIN=$STATE/bin
PKI=$STATE/pki
LOGS=$STATE/log
PIDS=$STATE/run
KUBECONFIG_ADMIN=$STATE/admin.kubeconfig
SOCK=$RUN/containerd.sock
CNI_NET=resilient-k8s
BRIDGE=resilient-k8s0
NODE=localhost
PAUSE_IMAGE=localhost/resilient-pause:1
HOSTPATH_PV=/tmp/hostpath_pv
DEVICE_PLUGINS=/var/lib/kubelet/device-plugins
KUBE_MOD=$ROOT/tools/kubernetes
ETCD_MOD=$ROOT/tools/etcd
KUBE_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl)
# Started in this order, stopped in the reverse one.
COMPONENTS=(etcd kube-apiserver containerd kube-controller-manager kube-scheduler kubelet)
KERNEL_TUNABLES=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
	kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
WAIT_SECONDS=120

log() { printf 'kubernetes.sh: %s\n' "$*" >&2; }
die() { printf 'kubernetes.sh: error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

# Everything but the final two lines goes to stderr.
exec 3>&1 1>&2

case $STATE in /*) ;; *) die "RESILIENT_K8S_STATE=$STATE must be an absolute path" ;; esac
case $RUN in /*) ;; *) die "RESILIENT_K8S_RUN=$RUN must be an absolute path" ;; esac

# ---------------------------------------------------------------- helpers

pid_of() {
	local pid
	[[ -f $PIDS/$1.pid ]] || return 1
	pid=$(<"$PIDS/$1.pid")
	[[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# stop_pids NAME... stops the components by their pid files, together:
# TERM, then KILL after 15 seconds.
stop_pids() {
	local name pid pids=() i
	for name in "$@"; do
		if pid=$(pid_of "$name"); then
			log "stopping $name (pid $pid)"
			kill "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
	done
	for pid in "${pids[@]}"; do
		for ((i = 0; i < 60; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.25
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -9 "$pid" 2>/dev/null || true
			sleep 0.2
		fi
	done
	for name in "$@"; do
		rm -f "$PIDS/$name.pid"
	done
}

# launch NAME CMD... starts CMD detached with its output in $LOGS/NAME.log.
launch() {
	local name=$1
	shift
	[[ -f $LOGS/$name.log ]] && mv -f "$LOGS/$name.log" "$LOGS/$name.log.1"
	# No inherited lock (fd 9) or stdout (fd 3), or `$(scripts/kubernetes.sh)`
	# would never end.
	# From /, so that a working directory removed later (a test's checkout)
	# cannot break the server or the processes it starts.
	(cd / && exec setsid nohup "$@" </dev/null >>"$LOGS/$name.log" 2>&1 3>&- 9>&-) &
	local pid=$!
	disown "$pid" 2>/dev/null || true
	echo "$pid" >"$PIDS/$name.pid"
}

# wait_for NAME WHAT CHECK... runs CHECK until it succeeds while component
# NAME lives, for up to WAIT_SECONDS.
wait_for() {
	local name=$1 what=$2 i
	shift 2
	for ((i = 0; i < WAIT_SECONDS * 4; i++)); do
		"$@" && return 0
		if ! pid_of "$name" >/dev/null; then
			tail -n 20 "$LOGS/$name.log" >&2 || true
			die "$name exited before $what; see $LOGS/$name.log"
		fi
		sleep 0.25
	done
	tail -n 20 "$LOGS/$name.log" >&2 || true
	die "$name: no $what within ${WAIT_SECONDS}s; see $LOGS/$name.log"
}

admin_token() { awk -F, '$2 == "admin" {print $1}' "$PKI/tokens.csv"; }

# api GET-PATH asks the API server as admin.
api() {
	curl -fsS -m 5 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(admin_token)" \
		"https://127.0.0.1:$API_PORT$1" 2>/dev/null
}

kctl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

ctr_() { ctr --address "$SOCK" --namespace k8s.io "$@"; }

# has_image REF tells whether containerd's k8s.io namespace holds REF.
has_image() {
	local refs
	refs=$(ctr_ images ls -q 2>/dev/null) || return 1
	grep -qxF "$1" <<<"$refs"
}

node_ready() {
	[[ $(kctl get node "$NODE" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}

# ---------------------------------------------------------------- packages

install_packages() {
	local want=() cmd pkg
	for cmd in containerd:containerd ctr:containerd runc:runc openssl:openssl gcc:gcc \
		curl:curl ip:iproute2 flock:util-linux iptables:iptables; do
		command -v "${cmd%%:*}" >/dev/null 2>&1 || want+=("${cmd#*:}")
	done
	[[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] ||
		want+=(containernetworking-plugins)
	# gcc -static needs the C library's static archive.
	[[ -f /usr/lib/$(gcc -dumpmachine 2>/dev/null || echo none)/libc.a ]] || want+=(libc6-dev)
	((${#want[@]} == 0)) && return 0
	command -v apt-get >/dev/null 2>&1 || die "missing ${want[*]} and no apt-get: this script needs Debian"
	mapfile -t want < <(printf '%s\n' "${want[@]}" | sort -u)
	apt_install "${want[@]}"
	for pkg in containerd ctr runc openssl gcc; do
		command -v "$pkg" >/dev/null 2>&1 || die "$pkg is not on PATH after installing it"
	done
}

# ---------------------------------------------------------------- build

# kube_version prints the k8s.io/kubernetes version tools/kubernetes requires.
kube_version() {
	awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$KUBE_MOD/go.mod"
}

kube_ldflags() {
	local v=$1 major minor pkg flags="-s -w"
	major=${v#v}
	major=${major%%.*}
	minor=${v#v*.}
	minor=${minor%%.*}
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
	done
	echo "$flags"
}

# build_stamp MODULE-DIR LDFLAGS prints what the binaries of a tools module
# were built from.
build_stamp() {
	cat "$1/go.mod" "$1/go.sum" <(echo "$2") | sha256sum | cut -c1-64
}

binaries_current() {
	local v name
	v=$(kube_version)
	[[ -f $BIN/.kubernetes.stamp && $(<"$BIN/.kubernetes.stamp") == "$(build_stamp "$KUBE_MOD" "$(kube_ldflags "$v")")" ]] || return 1
	[[ -f $BIN/.etcd.stamp && $(<"$BIN/.etcd.stamp") == "$(build_stamp "$ETCD_MOD" "-s -w")" ]] || return 1
	for name in "${KUBE_BINS[@]}" etcd; do
		[[ -x $BIN/$name ]] || return 1
	done
}

build_binaries() {
	command -v go >/dev/null 2>&1 || die "go is needed to build Kubernetes (see tools/kubernetes/go.mod for the version)"
	local v ldflags stamp name pkgs=() missing= start
	v=$(kube_version)
	[[ -n $v ]] || die "tools/kubernetes/go.mod does not require k8s.io/kubernetes"
	ldflags=$(kube_ldflags "$v")
	mkdir -p "$BIN"
	export GOWORK=off CGO_ENABLED=0

	stamp=$(build_stamp "$KUBE_MOD" "$ldflags")
	for name in "${KUBE_BINS[@]}"; do
		[[ -x $BIN/$name ]] || missing=1
	done
	if [[ -n $missing || ! -f $BIN/.kubernetes.stamp || $(<"$BIN/.kubernetes.stamp") != "$stamp" ]]; then
		for name in "${KUBE_BINS[@]}"; do
			pkgs+=("k8s.io/kubernetes/cmd/$name")
		done
		log "building Kubernetes $v (${KUBE_BINS[*]}) into $BIN; a cold build takes 10-15 minutes"
		start=$SECONDS
		rm -f "$BIN/.kubernetes.stamp"
		(cd "$KUBE_MOD" && go build -ldflags "$ldflags" -o "$BIN/" "${pkgs[@]}") ||
			die "building Kubernetes failed"
		echo "$stamp" >"$BIN/.kubernetes.stamp"
		log "built Kubernetes in $((SECONDS - start))s"
	fi
	[[ $("$BIN/kube-apiserver" --version 2>/dev/null) == "Kubernetes $v" ]] ||
		die "$BIN/kube-apiserver does not report Kubernetes $v: $("$BIN/kube-apiserver" --version 2>&1)"

	stamp=$(build_stamp "$ETCD_MOD" "-s -w")
	if [[ ! -x $BIN/etcd || ! -f $BIN/.etcd.stamp || $(<"$BIN/.etcd.stamp") != "$stamp" ]]; then
		log "building etcd into $BIN"
		start=$SECONDS
		rm -f "$BIN/.etcd.stamp"
		(cd "$ETCD_MOD" && go build -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3) ||
			die "building etcd failed"
		echo "$stamp" >"$BIN/.etcd.stamp"
		log "built etcd in $((SECONDS - start))s"
	fi
}

# ---------------------------------------------------------------- PKI

# sign NAME SUBJECT EXTENSIONS makes $PKI/NAME.{key,crt} signed by the CA.
sign() {
	local name=$1 subj=$2 ext=$3
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/$name.key" 2>/dev/null
	openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
	openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
		-days 3650 -sha256 -extfile <(printf '%s\n' "$ext") -out "$PKI/$name.crt" 2>/dev/null
	rm -f "$PKI/$name.csr"
}

make_pki() {
	local f complete=1
	for f in ca.crt ca.key apiserver.crt apiserver.key kubelet-client.crt kubelet-client.key sa.key sa.pub tokens.csv; do
		[[ -s $PKI/$f ]] || complete=
	done
	[[ -n $complete ]] && return 0
	log "making the PKI in $PKI"
	rm -rf "$PKI"
	mkdir -p "$PKI"
	chmod 700 "$PKI"
	# The first address of the service range is the kubernetes Service's.
	local first
	first=$(first_ip "$SERVICE_SUBNET")
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj /CN=resilient-kubernetes-ca \
		-keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null || die "openssl: making the CA failed"
	sign apiserver /CN=kube-apiserver "$(printf '%s\n' \
		'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
		'extendedKeyUsage=serverAuth' \
		"subjectAltName=IP:127.0.0.1,DNS:localhost,IP:$first,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local")" ||
		die "openssl: the API server certificate failed"
	sign kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$(printf '%s\n' \
		'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
		'extendedKeyUsage=clientAuth')" || die "openssl: the kubelet client certificate failed"
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null &&
		openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null ||
		die "openssl: the service-account key failed"
	# token,user,uid,"groups"
	{
		printf '%s,admin,admin,"system:masters"\n' "$(openssl rand -hex 24)"
		printf '%s,system:node:%s,kubelet,"system:nodes"\n' "$(openssl rand -hex 24)" "$NODE"
		printf '%s,system:kube-controller-manager,kube-controller-manager\n' "$(openssl rand -hex 24)"
		printf '%s,system:kube-scheduler,kube-scheduler\n' "$(openssl rand -hex 24)"
	} >"$PKI/tokens.csv"
	chmod 600 "$PKI"/*.key "$PKI/tokens.csv"
}

# kubeconfig FILE USER writes a kubeconfig for USER of the token file.
kubeconfig() {
	local file=$1 user=$2 token tmp
	token=$(awk -F, -v u="$user" '$2 == u {print $1}' "$PKI/tokens.csv")
	[[ -n $token ]] || die "no token for $user in $PKI/tokens.csv"
	tmp=$file.tmp
	cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: resilient
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $user
  user:
    token: $token
contexts:
- name: resilient
  context:
    cluster: resilient
    user: $user
current-context: resilient
EOF
	chmod 600 "$tmp"
	# The same content is not rewritten: a client may be reading it.
	if [[ -f $file ]] && cmp -s "$tmp" "$file"; then
		rm -f "$tmp"
	else
		mv -f "$tmp" "$file"
	fi
}

# ---------------------------------------------------------------- config

write_configs() {
	mkdir -p "$STATE/cni/net.d" "$STATE/cni/ipam" "$STATE/kubelet" "$STATE/pod-logs" "$STATE/containerd" "$RUN"
	kubeconfig "$KUBECONFIG_ADMIN" admin
	kubeconfig "$STATE/kubelet.kubeconfig" "system:node:$NODE"
	kubeconfig "$STATE/controller-manager.kubeconfig" system:kube-controller-manager
	kubeconfig "$STATE/scheduler.kubeconfig" system:kube-scheduler

	cat >"$STATE/containerd.toml" <<EOF
# Written by scripts/kubernetes.sh: a containerd of the cluster's own, apart
# from Debian's service and from Docker's.
version = 2
root = "$STATE/containerd"
state = "$RUN/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Without it pods fail to start here: root may not lower the OOM score
  # adjustment below its own.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$RUN/runc"
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
    max_conf_num = 1
EOF

	cat >"$STATE/cni/net.d/10-$CNI_NET.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$CNI_NET",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$STATE/cni/ipam"
      }
    }
  ]
}
EOF

	cat >"$STATE/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The API server does not proxy to loopback addresses (node proxy, configz):
# the kubelet listens on the pod bridge's address, which only this host and
# its pods reach.
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $PKI/ca.crt
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://$SOCK
cgroupDriver: cgroupfs
# These machines run cgroup v1.
failCgroupV1: false
failSwapOn: false
# Kubernetes has no per-pod pids field: this node-wide limit is what the
# driver reads (configz) and guarantees (the contract's default, 256).
podPidsLimit: 256
podLogsDir: $STATE/pod-logs
volumePluginDir: $STATE/kubelet/volume-plugins
# No registry can give an image back: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 5%
  nodefs.inodesFree: 5%
  imagefs.available: 5%
EOF
}

# ---------------------------------------------------------------- images

# The sandbox ("pause") image: there is no registry to pull one from.
PAUSE_C='#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void down(int sig) { (void)sig; _exit(0); }

static void reap(int sig) {
	(void)sig;
	while (waitpid(-1, 0, WNOHANG) > 0) {
	}
}

int main(void) {
	signal(SIGINT, down);
	signal(SIGTERM, down);
	signal(SIGCHLD, reap);
	for (;;) pause();
}'

# pause_archive prints the path of a docker-archive tarball of the pause
# image, built when the source changed.
pause_archive() {
	local dir=$STATE/images hash
	hash=$(printf '%s\n%s\n' "$PAUSE_C" "$PAUSE_IMAGE" | sha256sum | cut -c1-16)
	if [[ -f $dir/pause-$hash.tar ]]; then
		echo "$dir/pause-$hash.tar"
		return 0
	fi
	log "building the pause image"
	rm -rf "$dir"
	mkdir -p "$dir/work/rootfs" "$dir/work/out"
	printf '%s\n' "$PAUSE_C" >"$dir/work/pause.c"
	gcc -static -Os -o "$dir/work/rootfs/pause" "$dir/work/pause.c" || die "gcc -static pause.c failed"
	strip "$dir/work/rootfs/pause" 2>/dev/null || true
	tar -C "$dir/work/rootfs" --numeric-owner --owner=0 --group=0 --mtime='2000-01-01 00:00Z' \
		-cf "$dir/work/out/layer.tar" pause
	local diff config config_sha arch
	diff=$(sha256sum "$dir/work/out/layer.tar" | cut -c1-64)
	arch=$(go env GOARCH 2>/dev/null || dpkg --print-architecture)
	config=$(printf '{"architecture":"%s","os":"linux","config":{"Entrypoint":["/pause"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created":"2000-01-01T00:00:00Z","created_by":"scripts/kubernetes.sh"}],"created":"2000-01-01T00:00:00Z"}' "$arch" "$diff")
	config_sha=$(printf '%s' "$config" | sha256sum | cut -c1-64)
	printf '%s' "$config" >"$dir/work/out/$config_sha.json"
	printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$config_sha" "$PAUSE_IMAGE" \
		>"$dir/work/out/manifest.json"
	tar -C "$dir/work/out" -cf "$dir/pause-$hash.tar" manifest.json "$config_sha.json" layer.tar
	rm -rf "$dir/work"
	echo "$dir/pause-$hash.tar"
}

import_pause() {
	has_image "$PAUSE_IMAGE" && return 0
	local tar
	tar=$(pause_archive)
	ctr_ images import "$tar" >/dev/null || die "ctr images import $tar failed"
	has_image "$PAUSE_IMAGE" || die "containerd does not list $PAUSE_IMAGE after importing it"
}

docker_answers() {
	command -v docker >/dev/null 2>&1 && timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# workload_ids prints the Docker image ids of the workload images there are.
workload_ids() {
	local tag
	for tag in latest health; do
		docker image inspect --format "$WORKLOAD_IMAGE:$tag {{.Id}}" "$WORKLOAD_IMAGE:$tag" 2>/dev/null || true
	done
}

IMAGES_STAMP=$STATE/containerd/resilient-workload-images

# import_workload brings the workload images from Docker into containerd
# when containerd lacks them or Docker holds others.
import_workload() {
	local ids
	if ! docker_answers || ! docker image inspect "$WORKLOAD_IMAGE:latest" >/dev/null 2>&1; then
		if [[ -f $IMAGES_STAMP ]] && has_image "docker.io/library/$WORKLOAD_IMAGE:latest"; then
			log "no Docker image $WORKLOAD_IMAGE:latest; keeping the one containerd has"
			return 0
		fi
		log "Docker lacks $WORKLOAD_IMAGE:latest: running scripts/provision.sh"
		"$ROOT/scripts/provision.sh" 3>&- 9>&- || die "scripts/provision.sh failed"
	fi
	ids=$(workload_ids)
	local refs=() line have ok=1
	while read -r line; do
		refs+=("${line%% *}")
	done <<<"$ids"
	have=$(ctr_ images ls -q)
	for line in "${refs[@]}"; do
		grep -qxF "docker.io/library/$line" <<<"$have" || ok=
	done
	if [[ -n $ok && -f $IMAGES_STAMP && $(<"$IMAGES_STAMP") == "$ids" ]]; then
		return 0
	fi
	log "importing ${refs[*]} from Docker into containerd (namespace k8s.io)"
	docker save "${refs[@]}" | ctr_ images import - >/dev/null || die "docker save | ctr images import failed"
	have=$(ctr_ images ls -q)
	for line in "${refs[@]}"; do
		grep -qxF "docker.io/library/$line" <<<"$have" ||
			die "containerd does not list docker.io/library/$line after the import (it has: $(tr '\n' ' ' <<<"$have"))"
	done
	echo "$ids" >"$IMAGES_STAMP"
}

# ---------------------------------------------------------------- start

etcd_answers() { [[ $(curl -fsS -m 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null) == *'"health":"true"'* ]]; }
api_ready() { [[ $(api /readyz) == ok ]]; }
containerd_answers() { [[ -S $SOCK ]] && ctr --address "$SOCK" --connect-timeout 2s version >/dev/null 2>&1; }
healthz() { [[ $(curl -ksS -m 2 "https://127.0.0.1:$1/healthz" 2>/dev/null) == ok ]]; }
kubelet_healthz() { [[ $(curl -sS -m 2 http://127.0.0.1:10248/healthz 2>/dev/null) == ok ]]; }
default_sa() { kctl get serviceaccount default -o name >/dev/null 2>&1; }

save_tunables() {
	local s
	[[ -f $PIDS/kernel-tunables ]] && return 0
	for s in "${KERNEL_TUNABLES[@]}"; do
		[[ -e /proc/sys/${s//.//} ]] && printf '%s=%s\n' "$s" "$(sysctl -n "$s")"
	done >"$PIDS/kernel-tunables.tmp"
	mv -f "$PIDS/kernel-tunables.tmp" "$PIDS/kernel-tunables"
}

restore_tunables() {
	local line
	[[ -f $PIDS/kernel-tunables ]] || return 0
	while IFS= read -r line; do
		[[ -n $line ]] || continue
		[[ $(sysctl -n "${line%%=*}" 2>/dev/null) == "${line#*=}" ]] || sysctl -q -w "$line" >/dev/null 2>&1 || true
	done <"$PIDS/kernel-tunables"
	rm -f "$PIDS/kernel-tunables"
}

# make_bridge makes the pod bridge with the node's address before the kubelet
# starts; the bridge CNI plugin then takes it as it is.
make_bridge() {
	ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge ||
		die "ip link add $BRIDGE type bridge failed"
	if [[ -z $(ip -4 -o addr show dev "$BRIDGE" to "$NODE_IP/32") ]]; then
		ip addr add "$NODE_IP/${POD_SUBNET#*/}" dev "$BRIDGE" || die "ip addr add $NODE_IP to $BRIDGE failed"
	fi
	ip link set "$BRIDGE" up
}

# launch_apiserver starts kube-apiserver, which `restart-apiserver` also
# uses, with the same flags.
launch_apiserver() {
	log "starting kube-apiserver on 127.0.0.1:$API_PORT"
	launch kube-apiserver "$BIN/kube-apiserver" \
		--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
		--etcd-servers="http://127.0.0.1:$ETCD_PORT" \
		--service-cluster-ip-range="$SERVICE_SUBNET" --endpoint-reconciler-type=none \
		--tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
		--client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
		--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
		--kubelet-client-certificate="$PKI/kubelet-client.crt" --kubelet-client-key="$PKI/kubelet-client.key" \
		--kubelet-preferred-address-types=InternalIP \
		--allow-privileged=true --profiling=false
}

# restart_apiserver DOWN kills the API server (SIGKILL: no graceful
# shutdown), leaves it down for DOWN seconds, starts it again with the same
# flags and waits until it is ready. For fault-injection tests.
restart_apiserver() {
	local down=${1:-5} pid
	[[ $down =~ ^[0-9]+$ ]] || die "restart-apiserver: DOWN must be whole seconds, not $down"
	pid=$(pid_of kube-apiserver) || die "restart-apiserver: no kube-apiserver of this script runs"
	log "killing kube-apiserver (pid $pid); down for ${down}s"
	kill -9 "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	sleep "$down"
	launch_apiserver
	wait_for kube-apiserver "/readyz ok" api_ready
	log "kube-apiserver ready again"
}

start_cluster() {
	mkdir -p "$LOGS" "$PIDS"
	write_configs

	log "starting etcd on 127.0.0.1:$ETCD_PORT"
	launch etcd "$BIN/etcd" --name default --data-dir "$STATE/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" \
		--unsafe-no-fsync
	log "starting containerd on $SOCK"
	launch containerd containerd --config "$STATE/containerd.toml"
	wait_for etcd "health" etcd_answers

	launch_apiserver

	wait_for containerd "an answer on $SOCK" containerd_answers
	import_pause
	import_workload

	wait_for kube-apiserver "/readyz ok" api_ready

	log "starting kube-controller-manager and kube-scheduler"
	launch kube-controller-manager "$BIN/kube-controller-manager" \
		--kubeconfig="$STATE/controller-manager.kubeconfig" \
		--authentication-kubeconfig="$STATE/controller-manager.kubeconfig" \
		--authorization-kubeconfig="$STATE/controller-manager.kubeconfig" \
		--bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
		--use-service-account-credentials=true \
		--service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
		--cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
		--service-cluster-ip-range="$SERVICE_SUBNET" \
		--enable-hostpath-provisioner=true \
		--flex-volume-plugin-dir="$STATE/kubelet/volume-plugins" \
		--profiling=false
	launch kube-scheduler "$BIN/kube-scheduler" \
		--kubeconfig="$STATE/scheduler.kubeconfig" \
		--authentication-kubeconfig="$STATE/scheduler.kubeconfig" \
		--authorization-kubeconfig="$STATE/scheduler.kubeconfig" \
		--bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false --profiling=false

	make_bridge
	log "starting kubelet (node $NODE, $NODE_IP)"
	save_tunables
	launch kubelet "$BIN/kubelet" \
		--config="$STATE/kubelet.yaml" --kubeconfig="$STATE/kubelet.kubeconfig" \
		--root-dir="$STATE/kubelet" --cert-dir="$STATE/kubelet/pki" \
		--hostname-override="$NODE" --node-ip="$NODE_IP"
	wait_for kubelet "healthz ok" kubelet_healthz
	wait_for kube-controller-manager "healthz ok" healthz 10257
	wait_for kube-scheduler "healthz ok" healthz 10259
	wait_for kubelet "node $NODE Ready" node_ready
	# The kubelet has set its kernel tunables by now (once, at start).
	restore_tunables
	log "node $NODE is Ready"
}

storage_class() {
	kctl apply -f - >/dev/null <<EOF || die "creating the StorageClass standard failed"
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/host-path
reclaimPolicy: Delete
volumeBindingMode: Immediate
EOF
}

# check_pod runs a pod of the workload image until it is Running.
check_pod() {
	local pod=resilient-kubernetes-check start
	wait_for kube-controller-manager "default service account" default_sa
	kctl delete pod "$pod" --ignore-not-found --now --wait >/dev/null 2>&1 || true
	start=$SECONDS
	kctl apply -f - >/dev/null <<EOF || die "creating the test pod failed"
apiVersion: v1
kind: Pod
metadata:
  name: $pod
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: workload
    image: $WORKLOAD_IMAGE:latest
    imagePullPolicy: Never
EOF
	if ! kctl wait pod "$pod" --for=jsonpath='{.status.phase}'=Running --timeout="${WAIT_SECONDS}s" >/dev/null; then
		kctl describe pod "$pod" | tail -n 20 >&2 || true
		die "the test pod did not reach Running; see $LOGS/kubelet.log"
	fi
	log "test pod Running after $((SECONDS - start))s; deleting it"
	kctl delete pod "$pod" --now --wait --timeout=60s >/dev/null || die "deleting the test pod failed"
}

# ---------------------------------------------------------------- stop

# shim_pids prints the pids of the containerd shims of this containerd.
shim_pids() {
	pgrep -f -- "^[^ ]*containerd-shim[^ ]* .*-address $SOCK( |\$)" || true
}

# shim_sockets PID... prints the paths of the unix sockets the shims listen on.
shim_sockets() {
	local pid fd inodes=()
	for pid in "$@"; do
		for fd in /proc/"$pid"/fd/*; do
			fd=$(readlink "$fd" 2>/dev/null) || continue
			[[ $fd == socket:\[*\] ]] && inodes+=("${fd//[^0-9]/}")
		done
	done
	((${#inodes[@]} > 0)) || return 0
	awk -v list=" ${inodes[*]} " 'NR > 1 && $8 != "" && index(list, " " $7 " ") {print $8}' /proc/net/unix |
		grep '^/' | sort -u || true
}

# kubepods_dirs prints the kubelet's pod cgroups (v1 hierarchies and v2).
kubepods_dirs() {
	local d
	for d in /sys/fs/cgroup/kubepods /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods.slice /sys/fs/cgroup/*/kubepods.slice; do
		[[ -d $d ]] && echo "$d"
	done
	return 0
}

kill_pod_processes() {
	local d pids
	for d in $(kubepods_dirs); do
		pids=$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u) || true
		[[ -n $pids ]] && kill -9 $pids 2>/dev/null
	done
	return 0
}

# our_mounts prints the mount points under the script's directories,
# deepest first.
our_mounts() {
	awk -v s="$STATE/" -v r="$RUN/" -v h="$HOSTPATH_PV/" \
		'{m = $5 "/"; if (index(m, s) == 1 || index(m, r) == 1 || index(m, h) == 1) print $5}' /proc/self/mountinfo |
		awk '{print length, $0}' | sort -rn | cut -d' ' -f2-
}

unmount_all() {
	local m i
	for ((i = 0; i < 3; i++)); do
		m=$(our_mounts)
		[[ -n $m ]] || return 0
		while IFS= read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		done <<<"$m"
	done
	[[ -z $(our_mounts) ]] || log "warning: still mounted: $(our_mounts | tr '\n' ' ')"
}

# delete_netns deletes the cni- network namespaces that no process uses
# (the CRI names its pods' namespaces so; Podman's are netns-).
delete_netns() {
	local ns inode used
	used=$(find /proc/[0-9]*/ns/net -maxdepth 0 -exec stat -L -c %i {} + 2>/dev/null | sort -u) || true
	for ns in /run/netns/cni-*; do
		[[ -e $ns ]] || continue
		inode=$(stat -L -c %i "$ns" 2>/dev/null) || continue
		grep -qx "$inode" <<<"$used" && continue
		ip netns delete "${ns##*/}" 2>/dev/null || { umount "$ns" 2>/dev/null; rm -f "$ns"; }
	done
}

# delete_iptables removes the chains the kubelet makes (it has no option not
# to): KUBE-FIREWALL and its jumps from INPUT and OUTPUT, KUBE-IPTABLES-HINT
# and KUBE-KUBELET-CANARY.
delete_iptables() {
	local ipt table chain
	for ipt in iptables ip6tables; do
		command -v "$ipt" >/dev/null 2>&1 || continue
		"$ipt" -w -t filter -S KUBE-FIREWALL >/dev/null 2>&1 && {
			while "$ipt" -w -t filter -D INPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
			while "$ipt" -w -t filter -D OUTPUT -j KUBE-FIREWALL 2>/dev/null; do :; done
			"$ipt" -w -t filter -F KUBE-FIREWALL 2>/dev/null
			"$ipt" -w -t filter -X KUBE-FIREWALL 2>/dev/null
		}
		for table in mangle nat filter; do
			for chain in KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
				"$ipt" -w -t "$table" -S "$chain" >/dev/null 2>&1 || continue
				"$ipt" -w -t "$table" -F "$chain" 2>/dev/null
				"$ipt" -w -t "$table" -X "$chain" 2>/dev/null
			done
		done
	done
	return 0
}

stop_cluster() {
	local i name pids sockets=()
	stop_pids kubelet kube-scheduler kube-controller-manager
	# Containers first, while containerd can still shut their shims down.
	if containerd_answers; then
		local tasks
		tasks=$(ctr_ tasks ls -q 2>/dev/null || true)
		if [[ -n $tasks ]]; then
			log "killing $(wc -l <<<"$tasks") containers"
			for name in $tasks; do
				timeout 10 ctr --address "$SOCK" -n k8s.io tasks kill -s SIGKILL "$name" >/dev/null 2>&1 || true
			done
			for name in $tasks; do
				timeout 10 ctr --address "$SOCK" -n k8s.io tasks delete -f "$name" >/dev/null 2>&1 || true
			done
		fi
	fi
	kill_pod_processes
	mapfile -t pids < <(shim_pids)
	((${#pids[@]} > 0)) && mapfile -t sockets < <(shim_sockets "${pids[@]}")
	stop_pids containerd
	mapfile -t pids < <(shim_pids)
	if ((${#pids[@]} > 0)); then
		log "killing ${#pids[@]} containerd shims"
		kill -9 "${pids[@]}" 2>/dev/null || true
	fi
	kill_pod_processes
	# The API server stops in seconds while etcd answers, not without it.
	stop_pids kube-apiserver
	stop_pids etcd
	for name in "${COMPONENTS[@]}"; do
		rm -f "$PIDS/$name.pid"
	done
	for ((i = 0; i < 20; i++)); do
		[[ -z $(shim_pids) ]] && break
		sleep 0.25
	done
	((${#sockets[@]} > 0)) && rm -f "${sockets[@]}"
	rmdir /run/containerd/s /run/containerd 2>/dev/null || true

	unmount_all
	delete_netns
	ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
	local d
	for d in $(kubepods_dirs); do
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
	done
	delete_iptables
	restore_tunables
	# The kubelet links every container's log from /var/log/containers.
	if [[ -d /var/log/containers ]]; then
		find /var/log/containers -maxdepth 1 -type l -lname "$STATE/pod-logs/*" -delete 2>/dev/null || true
		rmdir /var/log/containers 2>/dev/null || true
	fi
	# libcni caches results by network name: ours and the CRI's loopback.
	rm -f /var/lib/cni/results/"$CNI_NET"-* /var/lib/cni/results/cni-loopback-* 2>/dev/null || true
	# The device plugin directory is the one path the kubelet does not take
	# from --root-dir.
	rm -f "$DEVICE_PLUGINS/kubelet.sock" "$DEVICE_PLUGINS/kubelet_internal_checkpoint"
	rmdir "$DEVICE_PLUGINS" "${DEVICE_PLUGINS%/*}" 2>/dev/null || true
	rm -rf --one-file-system "$STATE/etcd" "$STATE/kubelet" "$STATE/pod-logs" "$STATE/cni/ipam" "$STATE/containerd" "$RUN" "$HOSTPATH_PV"
}

# leftovers prints what stop should have removed and did not.
leftovers() {
	local p
	for p in $(shim_pids); do echo "shim pid $p"; done
	our_mounts | sed 's/^/mount /'
	ip link show "$BRIDGE" >/dev/null 2>&1 && echo "link $BRIDGE"
	kubepods_dirs | sed 's/^/cgroup /'
	[[ -e $DEVICE_PLUGINS/kubelet.sock ]] && echo "socket $DEVICE_PLUGINS/kubelet.sock"
	return 0
}

# ---------------------------------------------------------------- main

print_env() {
	printf 'export KUBECONFIG=%s\n' "$KUBECONFIG_ADMIN" >&3
	# shellcheck disable=SC2016 # $PATH is for the shell that evals this
	printf 'export PATH=%s:$PATH\n' "$BIN" >&3
}

main() {
	[[ $(id -u) -eq 0 ]] || die "run as root: the kubelet and containerd need it"
	local lock
	lock=${TMPDIR:-/tmp}/resilient-kubernetes.$(id -u).lock
	if command -v flock >/dev/null 2>&1 && { exec 9>>"$lock"; } 2>/dev/null; then
		if ! flock -n 9; then
			log "another run holds $lock; waiting"
			flock 9
		fi
	fi

	case ${1:-start} in
	stop)
		stop_cluster
		local left
		left=$(leftovers)
		[[ -z $left ]] || die "left behind: $(tr '\n' ';' <<<"$left")"
		log "stopped"
		return 0
		;;
	restart-apiserver)
		restart_apiserver "${2:-5}"
		return 0
		;;
	start) ;;
	*) die "usage: scripts/kubernetes.sh [start|stop|restart-apiserver [DOWN_SECONDS]]" ;;
	esac

	if [[ -f $PKI/tokens.csv && -x $BIN/kubectl ]] && binaries_current && api_ready && node_ready &&
		containerd_answers; then
		import_workload
		storage_class
		log "cluster answers on https://127.0.0.1:$API_PORT, node $NODE Ready"
		print_env
		return 0
	fi

	install_packages
	build_binaries
	make_pki
	if [[ -n $(leftovers) ]] || pid_of etcd >/dev/null || pid_of kube-apiserver >/dev/null || pid_of containerd >/dev/null; then
		log "stopping what is left of an earlier cluster"
	fi
	stop_cluster
	start_cluster
	storage_class
	check_pod
	log "cluster ready: https://127.0.0.1:$API_PORT, node $NODE, StorageClass standard (default)"
	print_env
}

main "$@"
