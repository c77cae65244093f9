package middleware

import (
	"context"
	"errors"
	"fmt"
	"path"
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
// rule nor the engine socket rule applies to them. Prefixes are absolute
// host paths; each is cleaned, and relative ones are ignored. For example,
// AllowBindMounts("/etc/ssl/certs") lets a container read the host's CA
// certificates, and AllowBindMounts("/var/run/docker.sock") deliberately
// hands a container control of the engine. Calls add up.
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
// contract.ValidateNetworkConfig. Invalid input never reaches the next
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
//   - Bind mounts of a container engine socket, wherever it is: base names
//     docker.sock, containerd.sock, crio.sock, podman.sock, buildkitd.sock,
//     dockershim.sock (CIS 5.31, OWASP rule 1).
//   - Bind mounts of host system paths (CIS 5.5): /, /etc, /root, /proc,
//     /sys, /dev, /boot, /usr, /bin, /sbin, /lib, /lib32, /lib64,
//     /var/lib/docker, /var/lib/containerd, /run and /var/run; and any
//     ancestor of one of them, such as /var, which holds /var/run and
//     /var/lib/docker. Beneath /etc, /root, /proc, /sys, /dev, /boot, /run,
//     /var/run and the engines' state directories everything is refused as
//     well: /etc holds credentials (/etc/shadow, TLS keys), /run and /var/run
//     hold daemon sockets. Beneath /usr, /bin, /sbin and the /lib
//     directories read-only mounts are allowed (say, /usr/share/zoneinfo)
//     and writable ones refused, since they would let a container replace
//     host programs.
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
// symlink that leads into a protected path. Keep the engine's own defences
// (user namespaces, AppArmor or SELinux, seccomp) as well.
//
// # Loosening and extending
//
// Each option lifts one rule deliberately: [AllowBindMounts] for sources
// beneath given prefixes, [AllowCapabilities], [AllowEngineCapabilities],
// [AllowRoot], [AllowNewPrivileges], [AllowWritableRootFS],
// [AllowUnlimitedCPU]. [WithPolicy] adds rules of your own.
func Validate(opts ...ValidateOption) Middleware {
	p := newPolicy(opts)
	return Intercept(func(ctx context.Context, call *Call, next Invoker) error {
		var err error
		switch call.Op {
		case contract.OpCreateContainer:
			err = p.checkContainer(*call.Container)
		case contract.OpCreateVolume:
			err = contract.ValidateVolumeConfig(*call.Volume)
		case contract.OpCreateNetwork:
			err = contract.ValidateNetworkConfig(*call.Network)
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
	{"/var/lib/docker", beneathRefused, "the Docker engine's state, including other containers' files"},
	{"/var/lib/containerd", beneathRefused, "containerd's state, including other containers' files"},
	{"/run", beneathRefused, "host runtime state and daemon sockets"},
	{"/var/run", beneathRefused, "host runtime state and daemon sockets"},
}

// engineSockets are the base names of container engine sockets, refused
// wherever they are (rootless engines keep them in home directories).
var engineSockets = map[string]bool{
	"docker.sock":     true,
	"containerd.sock": true,
	"crio.sock":       true,
	"podman.sock":     true,
	"buildkitd.sock":  true,
	"dockershim.sock": true,
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
	if engineSockets[path.Base(src)] {
		return fmt.Sprintf("bind mount of %q is refused: a container engine socket gives full control of the host (CIS Docker Benchmark 5.31)", src)
	}
	for _, hp := range hostPaths {
		refused := src == hp.path || within(hp.path, src)
		if !refused && within(src, hp.path) {
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
		case src != hp.path && within(hp.path, src):
			return fmt.Sprintf("bind mount of %q is refused: it contains %s, %s (CIS Docker Benchmark 5.5)", src, hp.path, hp.what)
		case src != hp.path && hp.beneath == beneathReadOnly:
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

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
