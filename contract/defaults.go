package contract

import (
	"maps"
	"slices"
)

// Default resource limits, see [DefaultResourceLimits].
const (
	DefaultCPU    = 1.0  // cores
	DefaultMemory = 512  // MB
	DefaultDisk   = 1024 // MB
	DefaultPIDs   = 256  // processes
)

// DefaultUser is the user containers run as by default: nobody:nogroup by
// number, so it works in images without /etc/passwd.
const DefaultUser = "65534:65534"

// DefaultResourceLimits returns bounded limits: 1 CPU core, 512 MB of
// memory, 1024 MB of disk, 256 processes.
func DefaultResourceLimits() ResourceLimits {
	return ResourceLimits{CPU: DefaultCPU, Memory: DefaultMemory, Disk: DefaultDisk, PIDs: DefaultPIDs}
}

// DefaultSecurityOptions returns the secure defaults: read-only root
// filesystem, no new privileges, user 65534:65534, every capability dropped
// and none added.
func DefaultSecurityOptions() SecurityOptions {
	return SecurityOptions{
		ReadOnly:        true,
		NoNewPrivileges: true,
		User:            DefaultUser,
		Capabilities:    Capabilities{Drop: []string{"ALL"}, Add: []string{}},
	}
}

// NewResourceLimits is the Go form of the contract's createResourceLimits:
// every zero field of partial takes its value from [DefaultResourceLimits],
// so leaving a field out never means "unlimited". Other values are kept as
// given, and [ValidateResourceLimits] judges them.
func NewResourceLimits(partial ResourceLimits) ResourceLimits {
	d := DefaultResourceLimits()
	if partial.CPU == 0 {
		partial.CPU = d.CPU
	}
	if partial.Memory == 0 {
		partial.Memory = d.Memory
	}
	if partial.Disk == 0 {
		partial.Disk = d.Disk
	}
	if partial.PIDs == 0 {
		partial.PIDs = d.PIDs
	}
	return partial
}

// SecurityOption loosens one of the secure defaults in
// [NewSecurityOptions]. Each one names what it gives up.
type SecurityOption func(*SecurityOptions)

// RunAs makes the container run as user ("uid[:gid]" or "name[:group]")
// instead of [DefaultUser].
func RunAs(user string) SecurityOption { return func(s *SecurityOptions) { s.User = user } }

// WritableRootFS gives the container a writable root filesystem.
func WritableRootFS() SecurityOption { return func(s *SecurityOptions) { s.ReadOnly = false } }

// AllowNewPrivileges lets processes gain privileges, e.g. through setuid
// binaries.
func AllowNewPrivileges() SecurityOption {
	return func(s *SecurityOptions) { s.NoNewPrivileges = false }
}

// AddCapabilities adds capabilities back after ALL were dropped.
func AddCapabilities(caps ...string) SecurityOption {
	return func(s *SecurityOptions) { s.Capabilities.Add = append(s.Capabilities.Add, caps...) }
}

// NewSecurityOptions is the Go form of the contract's createSecurityOptions:
// it starts from [DefaultSecurityOptions] and applies opts in order. Since Go
// has no Partial, a field cannot be left out into an insecure value; each
// loosening is an explicit option.
func NewSecurityOptions(opts ...SecurityOption) SecurityOptions {
	s := DefaultSecurityOptions()
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	return s
}

// NewContainerConfig is the Go form of the contract's createDriverConfig: a
// complete config for image in session sessionID, with empty env, labels and
// mounts, the driver's default network, [DefaultResourceLimits] and
// [DefaultSecurityOptions]. Change fields of the result as needed.
func NewContainerConfig(sessionID, image string) ContainerConfig {
	return ContainerConfig{
		SessionID: sessionID,
		Image:     image,
		Env:       map[string]string{},
		Labels:    map[string]string{},
		Resources: DefaultResourceLimits(),
		Volumes:   []VolumeMount{},
		Security:  DefaultSecurityOptions(),
	}
}

// Clone returns a deep copy of cfg, so that a driver or middleware can keep
// or change it without touching the caller's maps and slices.
func (c ContainerConfig) Clone() ContainerConfig {
	c.Command = slices.Clone(c.Command)
	c.Env = maps.Clone(c.Env)
	c.Labels = maps.Clone(c.Labels)
	c.Volumes = slices.Clone(c.Volumes)
	c.Security.Capabilities.Drop = slices.Clone(c.Security.Capabilities.Drop)
	c.Security.Capabilities.Add = slices.Clone(c.Security.Capabilities.Add)
	return c
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
