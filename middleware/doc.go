// Package middleware composes behaviour around a contract.ContainerDriver.
//
// A [Middleware] wraps a driver in another. [Chain] composes middlewares,
// first outermost. [Intercept] turns an [Interceptor], a function of
// (ctx, call, next), into a Middleware: the adapter implements the driver's
// methods once, describes each call with a [Call] (operation, resource ID,
// config) and hands the interceptor an [Invoker] that continues the call.
// Every policy of this module (validation, retry, breaker, rate limit,
// tracing) is an interceptor, and every wrapper keeps the optional
// interfaces of what it wraps, exactly: contract.LogStreamer and the
// sandbox operations contract.Executor, contract.FileCopier and
// contract.StatsReader. A Call describes those too: an exec's options and
// result ([Call].Exec, [Call].ExecResult), a copy's path and the bytes of
// its tar stream read so far ([Call].Path, [Call].Copied).
//
// # Order
//
// In Chain(a, b)(d), a call runs a's code before b's, and b's before d.
// An interceptor that calls next more than once (retry) runs everything
// after it again on every attempt: in Chain(retry, breaker) each attempt
// passes the breaker; in Chain(breaker, retry) the breaker sees one result
// per logical call. resilient.Wrap builds the recommended order.
//
// # Validation and container engine locations
//
// [Validate] refuses invalid input before it reaches a driver, and by
// default input that weakens the host's security; its documentation gives
// the whole policy. One of its rules protects the container engines
// themselves: a bind mount whose host source is, lies inside or contains
// (is an ancestor of) a known engine location is refused, read-only or
// not, with a CONFIGURATION issue at "volumes.N.source" that names the
// location. The reasons:
//
//   - Engine sockets. A container that reaches an engine's socket starts a
//     privileged container with the host's root filesystem mounted: the
//     socket is the host. A read-only bind mount does not stop connect()
//     on a unix socket inside it. CIS Docker Benchmark 5.31 "Ensure that
//     the Docker socket is not mounted inside any containers"; OWASP Docker
//     Security Cheat Sheet rule #1 "Do not expose the Docker daemon
//     socket".
//   - Engine state. Access to an engine's storage is control of every
//     container: their files, volumes and secrets, and, writable, their
//     programs (CIS Docker Benchmark 5.5).
//
// The known locations ("*" is any one component, such as a uid or a user;
// every /run location holds under /var/run as well):
//
//   - Docker: /run/docker.sock; its runtime folder /run/docker; its data
//     root /var/lib/docker; snap Docker's /var/snap/docker (its sockets and
//     common/var-lib-docker); cri-dockerd's /run/cri-dockerd.sock.
//   - Rootless Docker: /run/user/*/docker.sock and /run/user/*/docker
//     ($XDG_RUNTIME_DIR); its data root ~/.local/share/docker.
//   - containerd: /run/containerd (containerd.sock), /var/lib/containerd;
//     rootless containerd's (nerdctl's) ~/.local/share/containerd.
//   - Podman, CRI-O and Buildah: /run/podman (podman.sock), /run/crio
//     (crio.sock), /run/containers, and their shared storage
//     /var/lib/containers; CRI-O's /var/lib/crio.
//   - Rootless Podman: /run/user/*/podman (podman.sock),
//     /run/user/*/containers, and its storage ~/.local/share/containers.
//   - BuildKit: /run/buildkit (buildkitd.sock), /run/user/*/buildkit,
//     /var/lib/buildkit.
//   - Kubernetes: k3s's /run/k3s (its containerd socket), the state of k3s
//     and RKE2 /var/lib/rancher, the kubelet's /var/lib/kubelet (pods'
//     secrets, pod-resources and device-plugin sockets).
//   - Docker Desktop: ~/.docker (desktop/docker.sock on Linux,
//     run/docker.sock on macOS, and registry credentials),
//     ~/Library/Containers/com.docker.docker on macOS.
//   - VM-based engines: Colima's ~/.colima (<profile>/docker.sock), Lima's
//     ~/.lima (<instance>/sock/docker.sock), Rancher Desktop's ~/.rd
//     (docker.sock), OrbStack's ~/.orbstack (run/docker.sock).
//   - Socket names: docker.sock, containerd.sock, crio.sock, podman.sock,
//     buildkitd.sock and dockershim.sock, wherever they are.
//
// A home can sit anywhere, so the "~/" folders (".docker", ".colima",
// ".lima", ".rd", ".orbstack", ".local/share/docker",
// ".local/share/containers", ".local/share/containerd",
// "Library/Containers/com.docker.docker") and the socket names are refused
// at any depth: /srv/u/bob/.colima/default as well as
// /home/bob/.colima/default. The homes /root, /home/*, /Users/* and
// /var/home/* are known, so a bind mount of a whole home, or of /home,
// /Users, /run/user, /var or /, is refused for what it contains, while
// /home/alice/projects passes. Paths are matched component by component,
// never as string prefixes: /var/lib/dockerx is not /var/lib/docker. They
// are matched without regard to case, as macOS's file systems compare
// names by default (/Users/bob/.Docker is ~/.docker there); on a
// case-sensitive file system that refuses a few more paths, never fewer,
// and the prefixes of [AllowBindMounts] compare exactly. A
// project that has a folder of its own with such a name (a .docker folder
// of Dockerfiles, say) allows it deliberately with [AllowBindMounts].
package middleware
