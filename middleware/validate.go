package middleware

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/resilientdriver/resilient/contract"
)

// ValidateOption configures [Validate] and [CheckContainerConfig]. Every
// option loosens or extends the default security policy deliberately; see
// [Validate] for that policy.
type ValidateOption interface {
	applyValidate(*policy)
}

type validateOption func(*policy)

func (f validateOption) applyValidate(p *policy) { f(p) }

// AllowBindMounts lets bind mounts whose host source is one of prefixes, or
// lies beneath one, pass the bind mount rules: neither the host system path
// rule nor the engine location rule applies to them. Prefixes are absolute
// host paths; each is cleaned, and relative ones are ignored. For example,
// AllowBindMounts("/etc/ssl/certs") lets a container read the host's CA
// certificates, AllowBindMounts("/srv/app/.docker") lets it have a
// project's own .docker folder, and AllowBindMounts("/var/run/docker.sock")
// deliberately hands a container control of the engine. A prefix allows
// what lies beneath it, never its ancestors:
// AllowBindMounts("/home/alice/src") does not allow /home/alice. Calls add
// up.
//
// Default: no prefixes.
func AllowBindMounts(prefixes ...string) ValidateOption {
	return validateOption(func(p *policy) {
		for _, pre := range prefixes {
			if strings.HasPrefix(pre, "/") {
				p.bindAllowed = append(p.bindAllowed, path.Clean(pre))
			}
		}
	})
}

// AllowCapabilities lets a container add the given capabilities although
// the policy counts them as dangerous. Names are matched in any case, with
// or without "CAP_"; "ALL" allows adding every capability. Calls add up.
//
// Default: none; see [Validate] for the dangerous ones.
func AllowCapabilities(caps ...string) ValidateOption {
	return validateOption(func(p *policy) {
		if p.capsAllowed == nil {
			p.capsAllowed = map[string]bool{}
		}
		for _, c := range caps {
			p.capsAllowed[contract.CanonicalCapability(c)] = true
		}
	})
}

// AllowRoot lets a container run as root, or as the image's default user
// (an empty security.user), which often is root.
//
// Default: refused (CIS Docker Benchmark 4.1).
func AllowRoot() ValidateOption {
	return validateOption(func(p *policy) { p.allowRoot = true })
}

// AllowWritableRootFS lets a container have a writable root filesystem
// (security.readOnly false).
//
// Default: refused (CIS Docker Benchmark 5.12).
func AllowWritableRootFS() ValidateOption {
	return validateOption(func(p *policy) { p.allowWritableRootFS = true })
}

// AllowNewPrivileges lets a container's processes gain privileges through
// setuid and setgid binaries and file capabilities
// (security.noNewPrivileges false).
//
// Default: refused (CIS Docker Benchmark 5.25).
func AllowNewPrivileges() ValidateOption {
	return validateOption(func(p *policy) { p.allowNewPrivileges = true })
}

// AllowEngineCapabilities lets a container keep the capabilities the engine
// grants by default (for Docker: CHOWN, DAC_OVERRIDE, NET_RAW, SETUID, ...),
// so that security.capabilities.drop need not contain "ALL". Dangerous
// capabilities still may not be added.
//
// Default: refused; drop must contain "ALL" (CIS Docker Benchmark 5.3).
func AllowEngineCapabilities() ValidateOption {
	return validateOption(func(p *policy) { p.allowEngineCaps = true })
}

// AllowUnlimitedCPU lets a container run without a CPU limit
// (resources.cpu 0, which the contract's schema accepts).
//
// Default: refused (CIS Docker Benchmark 5.11).
func AllowUnlimitedCPU() ValidateOption {
	return validateOption(func(p *policy) { p.allowUnlimitedCPU = true })
}

// WithPolicy adds a rule of your own. It runs on every container config
// that is created, after the built-in rules, and returns the problems it
// finds (nil for none) as issues with zod-style paths such as
// "labels.team". Its issues are reported with the others, and any issue
// refuses the call. Calls add up; rules run in the order given. A nil rule
// is ignored.
func WithPolicy(rule func(contract.ContainerConfig) []contract.Issue) ValidateOption {
	return validateOption(func(p *policy) {
		if rule != nil {
			p.rules = append(p.rules, rule)
		}
	})
}

// Validate returns the validation middleware. On CreateContainer it checks
// the config against the contract's schema and semantic rules
// (contract.ValidateContainerConfig) and against a security policy; on
// CreateVolume and CreateNetwork against contract.ValidateVolumeConfig and
// contract.ValidateNetworkConfig; on ExecContainer the options against
// contract.ValidateExecOptions (a command, no NUL, env names, an absolute
// clean working directory, the caps); on CopyToContainer and
// CopyFromContainer the path against contract.ValidateContainerPath
// (absolute, clean, no NUL). Invalid input never reaches the next
// driver: the call fails with a CONFIGURATION *contract.DriverError whose
// cause is a *contract.ValidationError listing every issue at once, schema
// and policy together, at zod-style paths such as
// "security.capabilities.add.0". Other operations pass through untouched
// and allocate nothing.
//
// Place Validate outside retry, breakers and rate limits, so that refused
// input costs no attempt, breaker count or token; resilient.Wrap does.
//
// # Default policy
//
// The default policy follows the CIS Docker Benchmark (section numbers of
// v1.6) and the OWASP Docker Security Cheat Sheet. A config made by
// contract.NewContainerConfig passes it. It refuses:
//
//   - Bind mounts that expose a container engine: a source that is a known
//     engine socket or engine state directory, lies inside one or contains
//     one (is an ancestor of it), read-only or not. An engine socket is
//     full control of the engine and so of the host, and a read-only bind
//     mount does not stop connect() on a unix socket inside it (CIS 5.31
//     "Ensure that the Docker socket is not mounted inside any
//     containers", OWASP rule 1 "Do not expose the Docker daemon socket");
//     access to an engine's storage is control of every container (CIS
//     5.5). The known locations, which the package documentation lists
//     with what each holds, are: the sockets /run/docker.sock,
//     /run/cri-dockerd.sock and /run/user/*/docker.sock; the runtime
//     folders /run/docker, /run/containerd, /run/podman, /run/crio,
//     /run/buildkit, /run/k3s, /run/containers and, for rootless engines,
//     /run/user/*/docker, /run/user/*/podman, /run/user/*/buildkit and
//     /run/user/*/containers, each under /var/run too; the state
//     directories /var/lib/docker, /var/lib/containerd,
//     /var/lib/containers, /var/lib/crio, /var/lib/buildkit,
//     /var/lib/rancher, /var/lib/kubelet and /var/snap/docker; the home
//     folders ~/.docker, ~/Library/Containers/com.docker.docker, ~/.colima,
//     ~/.lima, ~/.rd, ~/.orbstack, ~/.local/share/docker,
//     ~/.local/share/containers and ~/.local/share/containerd; and the
//     socket names docker.sock, containerd.sock, crio.sock, podman.sock,
//     buildkitd.sock and dockershim.sock. A "*" stands for one component
//     (a uid, a user). A home can sit anywhere, so the home folders and
//     the socket names are refused at any depth (/srv/u/bob/.colima); the
//     homes /root, /home/*, /Users/* and /var/home/* are known, so a whole
//     home, /home or /Users is refused as their ancestor, while
//     /home/alice/projects passes. Paths are matched component by
//     component: /var/lib/dockerx is not /var/lib/docker.
//   - Bind mounts of host system paths (CIS 5.5): /, /etc, /root, /proc,
//     /sys, /dev, /boot, /usr, /bin, /sbin, /lib, /lib32, /lib64, /run and
//     /var/run; and any ancestor of one of them, such as /var, which holds
//     /var/run. Beneath /etc, /root, /proc, /sys, /dev, /boot, /run and
//     /var/run everything is refused as well: /etc holds credentials
//     (/etc/shadow, TLS keys), /run and /var/run hold daemon sockets.
//     Beneath /usr, /bin, /sbin and the /lib directories read-only mounts
//     are allowed (say, /usr/share/zoneinfo) and writable ones refused,
//     since they would let a container replace host programs.
//   - Adding a dangerous capability (CIS 5.3, OWASP rule 3): ALL,
//     AUDIT_CONTROL, BPF, DAC_READ_SEARCH, MAC_ADMIN, MAC_OVERRIDE,
//     NET_ADMIN, NET_RAW, PERFMON, SYS_ADMIN, SYS_BOOT, SYS_MODULE,
//     SYS_PTRACE, SYS_RAWIO, SYS_TIME, SYSLOG. The contract accepts only
//     known capability names, so every other one (CHOWN, KILL,
//     NET_BIND_SERVICE, SETUID, SETFCAP, ...) may be added; with
//     no-new-privileges, file capabilities grant nothing.
//   - security.capabilities.drop without "ALL" (CIS 5.3): the container
//     would keep the engine's default set, NET_RAW among it.
//   - Running as root (CIS 4.1, OWASP rule 2): user "", which runs as the
//     image's default user, often root; "root" or uid 0, with or without a
//     group ("0:0", "root:wheel"). A group of 0 with another user
//     ("1000:0") is allowed. Names are judged as written: the policy cannot
//     know that a name maps to uid 0 in an image.
//   - security.noNewPrivileges false (CIS 5.25, OWASP rule 4).
//   - security.readOnly false (CIS 5.12, OWASP rule 8).
//   - resources.cpu 0, no CPU limit (CIS 5.11, OWASP rule 7); the schema
//     bounds memory, disk and pids already.
//   - Network "host" (CIS 5.9) or "container:<id>", which shares another
//     container's network namespace. No option loosens this rule.
//
// Bind sources are cleaned before they are judged, so
// "/var/run/../run/docker.sock" is refused like /run/docker.sock; the
// contract's schema refuses unclean sources too. Paths are judged as
// written: the policy does not see the host and cannot follow a host
// symlink that leads into a protected path, nor know that a folder outside
// the known homes is a home (a bind mount of /srv/u/bob passes, of
// /srv/u/bob/.colima does not). Keep the engine's own defences
// (user namespaces, AppArmor or SELinux, seccomp) as well.
//
// # Loosening and extending
//
// Each option lifts one rule deliberately: [AllowBindMounts] for sources
// beneath given prefixes (a project's own .docker folder, say), [AllowCapabilities], [AllowEngineCapabilities],
// [AllowRoot], [AllowNewPrivileges], [AllowWritableRootFS],
// [AllowUnlimitedCPU]. [WithPolicy] adds rules of your own.
func Validate(opts ...ValidateOption) Middleware {
	p := newPolicy(opts)
	return Intercept(func(ctx context.Context, call *Call, next Invoker) error {
		var err error
		switch {
		case call.Container != nil:
			err = p.checkContainer(*call.Container)
		case call.Volume != nil:
			err = contract.ValidateVolumeConfig(*call.Volume)
		case call.Network != nil:
			err = contract.ValidateNetworkConfig(*call.Network)
		case call.Exec != nil:
			err = contract.ValidateExecOptions(*call.Exec)
		case call.Op == contract.OpCopyToContainer, call.Op == contract.OpCopyFromContainer:
			err = contract.ValidateContainerPath(call.Path)
		}
		if err != nil {
			var de *contract.DriverError
			if errors.As(err, &de) && de.Op == "" {
				de.Op = call.Op
			}
			return err
		}
		return next(ctx)
	})
}

// CheckContainerConfig checks cfg as [Validate] does on CreateContainer:
// contract.ValidateContainerConfig plus the security policy that opts
// configure. It returns nil or a CONFIGURATION *contract.DriverError whose
// cause is a *contract.ValidationError with every issue. Use it to refuse
// input early, before it reaches a driver.
func CheckContainerConfig(cfg contract.ContainerConfig, opts ...ValidateOption) error {
	return newPolicy(opts).checkContainer(cfg)
}

// policy is a configured security policy.
type policy struct {
	bindAllowed         []string
	capsAllowed         map[string]bool
	allowRoot           bool
	allowWritableRootFS bool
	allowNewPrivileges  bool
	allowEngineCaps     bool
	allowUnlimitedCPU   bool
	rules               []func(contract.ContainerConfig) []contract.Issue
}

func newPolicy(opts []ValidateOption) *policy {
	p := new(policy)
	for _, o := range opts {
		if o != nil {
			o.applyValidate(p)
		}
	}
	return p
}

func (p *policy) checkContainer(cfg contract.ContainerConfig) error {
	var list []contract.Issue
	schema := contract.ValidateContainerConfig(cfg)
	if schema != nil {
		var ve *contract.ValidationError
		if !errors.As(schema, &ve) {
			return schema
		}
		list = append(list, ve.Issues...)
	}
	nschema := len(list)
	list = p.appendIssues(list, cfg)
	for _, rule := range p.rules {
		list = append(list, rule(cfg)...)
	}
	if len(list) == 0 {
		return nil
	}
	msg := "invalid container config"
	if nschema == 0 {
		msg = "container config refused by the security policy"
	}
	return &contract.DriverError{
		Code:    contract.CodeConfiguration,
		Message: msg,
		Op:      contract.OpCreateContainer,
		Err:     &contract.ValidationError{Issues: list},
	}
}

func (p *policy) appendIssues(list []contract.Issue, cfg contract.ContainerConfig) []contract.Issue {
	add := func(path, format string, args ...any) {
		list = append(list, contract.Issue{Path: path, Message: fmt.Sprintf(format, args...)})
	}

	for i, m := range cfg.Volumes {
		if m.EffectiveType() != contract.MountBind {
			continue
		}
		if why := p.bindRefusal(m); why != "" {
			add("volumes."+strconv.Itoa(i)+".source", "%s; allow it deliberately with AllowBindMounts", why)
		}
	}

	s := cfg.Security
	for i, c := range s.Capabilities.Add {
		cc := contract.CanonicalCapability(c)
		if why, bad := dangerousCaps[cc]; bad && !p.capsAllowed[cc] && !p.capsAllowed["ALL"] {
			add("security.capabilities.add."+strconv.Itoa(i),
				"adding %s is refused: %s (CIS Docker Benchmark 5.3); allow it deliberately with AllowCapabilities", cc, why)
		}
	}
	if !p.allowEngineCaps && !dropsAll(s.Capabilities.Drop) {
		add("security.capabilities.drop",
			"must contain \"ALL\", so that the container holds only the capabilities it adds (CIS Docker Benchmark 5.3); allow the engine's defaults deliberately with AllowEngineCapabilities")
	}
	if !p.allowRoot {
		if why := rootUser(s.User); why != "" {
			add("security.user", "%s (CIS Docker Benchmark 4.1); allow it deliberately with AllowRoot", why)
		}
	}
	if !p.allowNewPrivileges && !s.NoNewPrivileges {
		add("security.noNewPrivileges",
			"must be true, so that setuid binaries cannot raise privileges (CIS Docker Benchmark 5.25); allow it deliberately with AllowNewPrivileges")
	}
	if !p.allowWritableRootFS && !s.ReadOnly {
		add("security.readOnly",
			"must be true, a read-only root filesystem (CIS Docker Benchmark 5.12); mount volumes where the container writes, or allow it deliberately with AllowWritableRootFS")
	}
	if !p.allowUnlimitedCPU && cfg.Resources.CPU == 0 {
		add("resources.cpu",
			"0 means no CPU limit and is refused (CIS Docker Benchmark 5.11); set a limit, or allow it deliberately with AllowUnlimitedCPU")
	}
	switch n := cfg.Network; {
	case strings.EqualFold(n, "host"):
		add("network", "the host's network namespace is refused (CIS Docker Benchmark 5.9)")
	case hasPrefixFold(n, "container:"):
		add("network", "sharing another container's network namespace is refused")
	}
	return list
}

// dangerousCaps are the capabilities the default policy refuses to add, with
// the reason. The contract only accepts known capability names, so this list
// over that closed set decides every case; the rest (CHOWN, KILL,
// NET_BIND_SERVICE, SETUID, ...) may be added.
var dangerousCaps = map[string]string{
	"ALL":             "it grants every capability, as a privileged container has",
	"AUDIT_CONTROL":   "it changes the host kernel's audit rules",
	"BPF":             "it loads BPF programs into the host kernel",
	"DAC_READ_SEARCH": "it opens host files by handle, a known container escape",
	"MAC_ADMIN":       "it reconfigures the host's mandatory access control (AppArmor, SELinux)",
	"MAC_OVERRIDE":    "it bypasses the host's mandatory access control",
	"NET_ADMIN":       "it reconfigures networking: interfaces, routes, firewall rules",
	"NET_RAW":         "it forges packets with raw sockets (spoofing, ARP poisoning)",
	"PERFMON":         "it reads kernel memory through performance monitoring",
	"SYS_ADMIN":       "it mounts file systems and manages namespaces, enough to escape the container",
	"SYS_BOOT":        "it reboots the host or loads a new kernel",
	"SYS_MODULE":      "it loads kernel modules into the host",
	"SYS_PTRACE":      "it traces and injects code into processes",
	"SYS_RAWIO":       "it performs raw I/O on host devices and memory",
	"SYS_TIME":        "it sets the host's clock",
	"SYSLOG":          "it reads the host kernel's log, which reveals kernel addresses",
}

func dropsAll(drop []string) bool {
	for _, c := range drop {
		if contract.CanonicalCapability(c) == "ALL" {
			return true
		}
	}
	return false
}

// rootUser explains why user runs as root, or returns "".
func rootUser(user string) string {
	if user == "" {
		return "must name a non-root user; empty runs as the image's default user, which often is root"
	}
	u, _, _ := strings.Cut(user, ":")
	if u == "root" {
		return "must not be root"
	}
	if n, err := strconv.ParseUint(u, 10, 64); err == nil && n == 0 {
		return "must not be uid 0 (root)"
	}
	return ""
}

// Protected host paths. A bind source is refused when it is one of them,
// when it lies beneath one whose rule covers what lies beneath, or when it
// is an ancestor of one (mounting /var exposes /var/run/docker.sock).
type beneath uint8

const (
	beneathAllowed  beneath = iota // only the path itself is refused
	beneathReadOnly                // beneath: refused unless mounted read-only
	beneathRefused                 // beneath: refused
)

var hostPaths = []struct {
	path    string
	beneath beneath
	what    string
}{
	{"/", beneathAllowed, "the host's root filesystem"},
	{"/etc", beneathRefused, "host configuration and credentials"},
	{"/root", beneathRefused, "the home of the host's root user"},
	{"/proc", beneathRefused, "the host kernel's process interface"},
	{"/sys", beneathRefused, "the host kernel's device and settings interface"},
	{"/dev", beneathRefused, "host devices"},
	{"/boot", beneathRefused, "the host kernel and boot loader"},
	{"/usr", beneathReadOnly, "host programs and libraries"},
	{"/bin", beneathReadOnly, "host programs"},
	{"/sbin", beneathReadOnly, "host system programs"},
	{"/lib", beneathReadOnly, "host libraries"},
	{"/lib32", beneathReadOnly, "host libraries"},
	{"/lib64", beneathReadOnly, "host libraries"},
	{"/run", beneathRefused, "host runtime state and daemon sockets"},
	{"/var/run", beneathRefused, "host runtime state and daemon sockets"},
}

// engineLocations is the table of known container engine locations: the
// sockets of the engines and the folders that hold them, and the engines'
// state. The default policy refuses a bind mount whose source is one of
// them, lies inside one or contains one (is an ancestor of one), read-only
// or not:
//
//   - An engine socket is full control of the engine, and so of the host: a
//     container that reaches it starts a privileged container with the
//     host's root filesystem mounted. A read-only bind mount does not stop
//     connect() on a unix socket inside it. CIS Docker Benchmark 5.31
//     "Ensure that the Docker socket is not mounted inside any containers";
//     OWASP Docker Security Cheat Sheet rule #1 "Do not expose the Docker
//     daemon socket".
//   - Access to an engine's storage is control of every container: their
//     files, volumes and secrets, and writable, their programs (CIS Docker
//     Benchmark 5.5, sensitive host directories).
//
// Paths are matched component by component, never as string prefixes
// (/var/lib/dockerx is not /var/lib/docker); a "*" component matches any
// one component (a uid, a user, a profile). A location is written as
//
//   - "/abs/path": that host path. A location under /run holds under
//     /var/run as well, its traditional alias (a symlink to /run on current
//     distributions).
//   - "~/rel": a folder of a home directory. A home can sit anywhere, so
//     rel's components are matched at any depth (/srv/u/bob/.colima); and
//     for the known homes (homeDirs) also as a path, so that a home, and
//     /home itself, count as ancestors of the location.
//   - "**/name": a name matched at any depth.
//
// socket tells whether the location is, or holds, an engine socket; what
// says what it is, for the refusal's message.
var engineLocations = []struct {
	path   string
	socket bool
	what   string
}{
	// Engine sockets and the runtime folders that hold them.
	{"/run/docker.sock", true, "the Docker engine's socket"},
	{"/run/docker", true, "the Docker engine's runtime folder, with containerd's and plugins' sockets"},
	{"/run/containerd", true, "containerd's runtime folder, with its socket containerd.sock"},
	{"/run/podman", true, "Podman's runtime folder, with its socket podman.sock"},
	{"/run/crio", true, "CRI-O's runtime folder, with its socket crio.sock"},
	{"/run/cri-dockerd.sock", true, "the socket of cri-dockerd, Kubernetes' adapter for Docker"},
	{"/run/buildkit", true, "BuildKit's runtime folder, with its socket buildkitd.sock"},
	{"/run/k3s", true, "k3s's runtime folder, with its containerd socket"},
	{"/run/containers", false, "the runtime state of Podman, CRI-O and Buildah, with registry credentials"},
	{"/run/user/*/docker.sock", true, "rootless Docker's socket ($XDG_RUNTIME_DIR/docker.sock)"},
	{"/run/user/*/docker", true, "rootless Docker's runtime folder"},
	{"/run/user/*/podman", true, "rootless Podman's runtime folder, with its socket podman.sock"},
	{"/run/user/*/buildkit", true, "rootless BuildKit's runtime folder, with its socket buildkitd.sock"},
	{"/run/user/*/containers", false, "rootless Podman's runtime state, with registry credentials"},

	// Engine state.
	{"/var/lib/docker", false, "the Docker engine's data root: images, containers and volumes"},
	{"/var/lib/containerd", false, "containerd's state: images and container snapshots"},
	{"/var/lib/containers", false, "the storage of Podman, CRI-O and Buildah: images, containers and volumes"},
	{"/var/lib/crio", false, "CRI-O's state"},
	{"/var/lib/buildkit", false, "BuildKit's state: build cache and snapshots"},
	{"/var/lib/rancher", false, "the state of k3s and RKE2: cluster credentials and containerd's storage"},
	{"/var/lib/kubelet", true, "the kubelet's state: pods' volumes and secrets, and its pod-resources and device-plugin sockets"},
	{"/var/snap/docker", true, "snap Docker's folder, with its runtime sockets and its data root common/var-lib-docker"},

	// Per home directory: Docker Desktop, VM-based engines, rootless engines.
	{"~/.docker", true, "Docker's user folder, with Docker Desktop's socket (desktop/docker.sock on Linux, run/docker.sock on macOS) and registry credentials"},
	{"~/Library/Containers/com.docker.docker", true, "Docker Desktop for macOS's folder, with its sockets and the engine's disk image"},
	{"~/.colima", true, "Colima's folder, with each profile's socket <profile>/docker.sock"},
	{"~/.lima", true, "Lima's folder, with each instance's socket <instance>/sock/docker.sock"},
	{"~/.rd", true, "Rancher Desktop's folder, with its socket docker.sock"},
	{"~/.orbstack", true, "OrbStack's folder, with its socket run/docker.sock"},
	{"~/.local/share/docker", false, "rootless Docker's data root"},
	{"~/.local/share/containers", false, "the storage of rootless Podman and Buildah"},
	{"~/.local/share/containerd", false, "rootless containerd's (nerdctl's) data root"},

	// Engine sockets by name, wherever they are.
	{"**/docker.sock", true, "a Docker engine socket"},
	{"**/containerd.sock", true, "a containerd socket"},
	{"**/crio.sock", true, "a CRI-O socket"},
	{"**/podman.sock", true, "a Podman socket"},
	{"**/buildkitd.sock", true, "a BuildKit socket"},
	{"**/dockershim.sock", true, "a dockershim socket"},
}

// homeDirs are the known places of home directories: root's, Linux's,
// macOS's, and Fedora Atomic's (Silverblue, CoreOS).
var homeDirs = []string{"/root", "/home/*", "/Users/*", "/var/home/*"}

const (
	socketReason = "an engine socket gives full control of the engine and so of the host, and a read-only bind mount does not stop connect() on it (CIS Docker Benchmark 5.31, OWASP Docker Security Cheat Sheet rule #1)"
	stateReason  = "access to an engine's storage is control of every container (CIS Docker Benchmark 5.5)"
)

// enginePattern is an engine location compiled for matching: the
// components of a path, matched from the root or, anyDepth, anywhere.
type enginePattern struct {
	comps    []string
	anyDepth bool
	socket   bool
	what     string
}

var enginePatterns = compileEngineLocations()

func compileEngineLocations() []enginePattern {
	var ps []enginePattern
	for _, loc := range engineLocations {
		add := func(p string, anyDepth bool) {
			ps = append(ps, enginePattern{comps: components(p), anyDepth: anyDepth, socket: loc.socket, what: loc.what})
		}
		switch {
		case strings.HasPrefix(loc.path, "~/"):
			rel := loc.path[1:]
			add(rel, true)
			for _, home := range homeDirs {
				add(home+rel, false)
			}
		case strings.HasPrefix(loc.path, "**/"):
			add(loc.path[2:], true)
		default:
			add(loc.path, false)
			if within(loc.path, "/run") {
				add("/var"+loc.path, false)
			}
		}
	}
	return ps
}

// components splits a clean absolute path into its components; "/" has
// none.
func components(p string) []string {
	if p == "/" {
		return nil
	}
	return strings.Split(p[1:], "/")
}

// match tells how the path of components s relates to the pattern: "is",
// "lies in" or "contains", with the location it names (wildcards filled in
// from s where s has them); "" when s neither is, lies in nor contains it.
func (ep enginePattern) match(s []string) (relation, loc string) {
	if ep.anyDepth {
		for i := 0; i+len(ep.comps) <= len(s); i++ {
			if slices.EqualFunc(s[i:i+len(ep.comps)], ep.comps, strings.EqualFold) {
				end := i + len(ep.comps)
				return isOrIn(len(s), end), "/" + strings.Join(s[:end], "/")
			}
		}
		return "", ""
	}
	for i := 0; i < len(s) && i < len(ep.comps); i++ {
		if ep.comps[i] != "*" && !strings.EqualFold(ep.comps[i], s[i]) {
			return "", ""
		}
	}
	if len(s) < len(ep.comps) {
		return "contains", "/" + strings.Join(slices.Concat(s, ep.comps[len(s):]), "/")
	}
	return isOrIn(len(s), len(ep.comps)), "/" + strings.Join(s[:len(ep.comps)], "/")
}

func isOrIn(n, end int) string {
	if n == end {
		return "is"
	}
	return "lies in"
}

// engineRefusal explains why a bind mount of src, a clean absolute path,
// exposes a known engine location, or returns "".
func engineRefusal(src string) string {
	s := components(src)
	for _, ep := range enginePatterns {
		relation, loc := ep.match(s)
		if relation == "" {
			continue
		}
		reason := stateReason
		if ep.socket {
			reason = socketReason
		}
		return fmt.Sprintf("bind mount of %q is refused: it %s %s, %s; %s", src, relation, loc, ep.what, reason)
	}
	return ""
}

// bindRefusal explains why the policy refuses the bind mount m, or returns
// "".
func (p *policy) bindRefusal(m contract.VolumeMount) string {
	src := m.Source
	if !strings.HasPrefix(src, "/") {
		return "" // the schema reports it
	}
	src = path.Clean(src)
	for _, pre := range p.bindAllowed {
		if within(src, pre) {
			return ""
		}
	}
	if why := engineRefusal(src); why != "" {
		return why
	}
	for _, hp := range hostPaths {
		refused := strings.EqualFold(src, hp.path) || withinFold(hp.path, src)
		if !refused && withinFold(src, hp.path) {
			switch hp.beneath {
			case beneathRefused:
				refused = true
			case beneathReadOnly:
				refused = !m.ReadOnly
			}
		}
		if !refused {
			continue
		}
		switch {
		case !strings.EqualFold(src, hp.path) && withinFold(hp.path, src):
			return fmt.Sprintf("bind mount of %q is refused: it contains %s, %s (CIS Docker Benchmark 5.5)", src, hp.path, hp.what)
		case !strings.EqualFold(src, hp.path) && hp.beneath == beneathReadOnly:
			return fmt.Sprintf("writable bind mount of %q is refused: it exposes %s (CIS Docker Benchmark 5.5)", src, hp.what)
		default:
			return fmt.Sprintf("bind mount of %q is refused: it exposes %s (CIS Docker Benchmark 5.5)", src, hp.what)
		}
	}
	return ""
}

// within reports whether p is dir or lies beneath it. Both are clean
// absolute paths.
func within(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir) && p[len(dir)] == '/'
}

// withinFold is within, with paths compared as a case-insensitive file
// system (macOS's by default, Windows') compares them: /Users/u/.Docker is
// ~/.docker there. The refusals compare so, and fail closed on a
// case-sensitive one; the allowed prefixes compare exactly.
func withinFold(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return strings.EqualFold(p, dir) || hasPrefixFold(p, dir) && len(p) > len(dir) && p[len(dir)] == '/'
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
