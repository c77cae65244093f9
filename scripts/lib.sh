# lib.sh - shell functions shared by provision.sh and podman.sh. Source it
# after defining log and die (each script prefixes its own messages) and
# ROOT (the repository root).
#
#   apt_install PACKAGE...      install Debian packages quietly, refreshing
#                               stale package lists once
#   build_workload_images CLI   (re)build resilient-workload:latest and
#                               :health with CLI (docker or podman) when the
#                               workload binary changed

WORKLOAD_IMAGE=resilient-workload
WORKLOAD_HASH_LABEL=io.github.resilientdriver.workload.sha256

apt_install() {
	local pkgs=("$@")
	export DEBIAN_FRONTEND=noninteractive
	# Keep the package's init scripts from starting a service with their
	# own defaults: the scripts start what the tests need themselves.
	local policy=/usr/sbin/policy-rc.d added_policy=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
	fi
	# Another script may be installing at the same time: wait for the
	# package manager's lock instead of failing on it.
	local apt=(apt-get -o DPkg::Lock::Timeout=600)
	local candidate
	candidate=$(apt-cache policy "${pkgs[0]}" 2>/dev/null | awk '/Candidate:/ {print $2}')
	if [[ -z $candidate || $candidate == "(none)" ]]; then
		log "apt-get update"
		"${apt[@]}" update -qq >/dev/null
	fi
	log "installing ${pkgs[*]}"
	local apt_log
	apt_log=$(mktemp)
	if ! "${apt[@]}" install -y -qq --no-install-recommends "${pkgs[@]}" >"$apt_log" 2>&1; then
		# Package lists may be stale (mirror moved on): refresh once, retry.
		log "install failed, running apt-get update and retrying"
		"${apt[@]}" update -qq >/dev/null
		if ! "${apt[@]}" install -y -qq --no-install-recommends "${pkgs[@]}" >"$apt_log" 2>&1; then
			tail -n 20 "$apt_log" >&2
			[[ -n $added_policy ]] && rm -f "$policy"
			die "apt-get install ${pkgs[*]} failed"
		fi
	fi
	rm -f "$apt_log"
	[[ -n $added_policy ]] && rm -f "$policy"
	return 0
}

# workload_label CLI REF prints the workload hash label of image REF.
workload_label() {
	"$1" image inspect --format "{{index .Config.Labels \"$WORKLOAD_HASH_LABEL\"}}" "$2" 2>/dev/null || true
}

# build_workload_images CLI builds the images with CLI (docker or podman):
#   resilient-workload:latest  static binary at /workload, CMD ["serve"]
#   resilient-workload:health  the same plus a HEALTHCHECK running
#                              "/workload probe" every second
# Nothing is rebuilt when the images carry the current binary's hash.
build_workload_images() {
	local cli=$1 image=$WORKLOAD_IMAGE
	command -v go >/dev/null 2>&1 || die "go is needed to build the workload image"
	local work bin hash arch
	# Build for the engine's architecture (e.g. arm64 under Docker Desktop).
	arch=$("$cli" version --format '{{.Server.Arch}}' 2>/dev/null || true)
	[[ $arch == *"no value"* ]] && arch=
	work=$(mktemp -d)
	WORKDIR=$work
	trap 'rm -rf "$WORKDIR"' EXIT
	bin=$work/rootfs/workload
	mkdir -p "$work/rootfs/tmp" "$work/rootfs/etc"
	(cd "$ROOT" && CGO_ENABLED=0 GOOS=linux GOARCH=${arch:-$(go env GOARCH)} go build -trimpath -ldflags='-s -w -buildid=' \
		-o "$bin" ./internal/workload) || die "building internal/workload failed"
	hash=$(sha256sum "$bin" | cut -c1-64)
	local old_latest old_health
	old_latest=$("$cli" image inspect --format '{{.Id}}' "$image:latest" 2>/dev/null || true)
	old_health=$("$cli" image inspect --format '{{.Id}}' "$image:health" 2>/dev/null || true)

	if [[ $(workload_label "$cli" "$image:latest") != "$hash" ]]; then
		log "importing $image:latest into $cli (workload sha256 ${hash:0:12})"
		chmod 1777 "$work/rootfs/tmp"
		printf 'root:x:0:0:root:/:/workload\nnobody:x:65534:65534:nobody:/nonexistent:/workload\n' \
			>"$work/rootfs/etc/passwd"
		printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/rootfs/etc/group"
		tar -C "$work/rootfs" --numeric-owner --owner=0 --group=0 --mtime='2000-01-01 00:00Z' \
			--sort=name -cf "$work/rootfs.tar" .
		"$cli" import \
			--change 'ENTRYPOINT ["/workload"]' \
			--change 'CMD ["serve"]' \
			--change 'EXPOSE 8080' \
			--change "LABEL $WORKLOAD_HASH_LABEL=$hash" \
			"$work/rootfs.tar" "$image:latest" >/dev/null || die "$cli import failed"
	fi

	if [[ $(workload_label "$cli" "$image:health") != "$hash" ||
		$("$cli" image inspect --format '{{.Config.Healthcheck}}' "$image:health" 2>/dev/null) == "<nil>" ]]; then
		log "building $image:health with $cli"
		mkdir -p "$work/health"
		cat >"$work/health/Dockerfile" <<EOF
FROM $image:latest
HEALTHCHECK --interval=1s --timeout=1s --retries=3 CMD ["/workload","probe"]
EOF
		local out
		case $cli in
		docker)
			# The classic builder resolves a local FROM without any registry
			# and works with every daemon version; recent clients warn that
			# it is deprecated, so its output is only shown on failure.
			out=$(DOCKER_BUILDKIT=0 docker build -q -t "$image:health" "$work/health" 2>&1) ;;
		*)
			# Only the Docker image format keeps a HEALTHCHECK.
			out=$("$cli" build -q --format docker -t "$image:health" "$work/health" 2>&1) ;;
		esac || {
			printf '%s\n' "$out" >&2
			die "$cli build $image:health failed"
		}
	fi

	# Drop the images replaced by this run (kept if a container still uses them).
	local id current
	current=$("$cli" images -q --no-trunc --filter "reference=$image")
	for id in "$old_health" "$old_latest"; do
		[[ -n $id ]] || continue
		grep -qF "${id#sha256:}" <<<"$current" && continue
		"$cli" image rm "$id" >/dev/null 2>&1 || true
	done
}
