package dockerdriver

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/strslice"

	"github.com/resilientdriver/resilient/contract"
)

const (
	mib = 1 << 20
	// tmpTarget is where a read-only root filesystem gets its writable,
	// size-bounded tmpfs.
	tmpTarget = "/tmp"
	// namePrefix starts the name of every container the driver creates.
	namePrefix = "resilient-"
)

// spec is what ContainerCreate needs.
type spec struct {
	name    string
	config  *container.Config
	host    *container.HostConfig
	network *network.NetworkingConfig
	disk    int64 // the disk limit applied, in MB; 0 when none
	mode    diskMode
	engine  engine // the engine the spec is for
	// limits are the limits asked, in engine units, DiskBytes only when
	// the disk limit is applied: what the engine must report back.
	limits contract.EngineLimits
}

// diskMode is how the disk limit is applied to one container.
type diskMode int

const (
	diskTmpfs     diskMode = iota // read-only root, bounded tmpfs at /tmp
	diskQuota                     // writable root with a storage quota
	diskUnbounded                 // writable root without a limit (DiskAllowUnboundedRoot)
)

// buildSpec maps a validated config to the Docker API of engine e. key is
// the idempotency key, "" when there is none. Limits are sent exactly as
// [contract.EngineLimitsOf] converts them, or the config is refused.
func (d *Driver) buildSpec(cfg contract.ContainerConfig, key string, mode diskMode, e engine) (spec, error) {
	lim, err := contract.EngineLimitsOf(cfg.Resources)
	if err != nil {
		return spec{}, withOp(err, opCreate)
	}
	l := d.labels
	extra := map[string]string{l.session: cfg.SessionID, l.image: cfg.Image}
	if key != "" {
		extra[l.key] = key
	}
	s := spec{name: d.containerName(cfg.SessionID, key), mode: mode, limits: lim, engine: e}
	s.limits.DiskBytes = 0
	switch mode {
	case diskTmpfs, diskQuota:
		s.disk = cfg.Resources.Disk
		s.limits.DiskBytes = lim.DiskBytes
	}
	extra[l.disk] = strconv.FormatInt(s.disk, 10)

	env := make([]string, 0, len(cfg.Env))
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		env = append(env, k+"="+cfg.Env[k])
	}
	s.config = &container.Config{
		Image:  cfg.Image,
		Env:    env,
		Labels: l.withUser(cfg.Labels, extra),
		User:   cfg.Security.User,
	}
	if cfg.Command != nil {
		s.config.Cmd = strslice.StrSlice(slices.Clone(cfg.Command))
	}

	pids := lim.PIDs
	h := &container.HostConfig{
		Resources: container.Resources{
			NanoCPUs:   lim.NanoCPUs,
			Memory:     lim.MemoryBytes,
			MemorySwap: lim.MemoryBytes, // no swap beyond the memory limit
			PidsLimit:  &pids,
		},
		CapDrop:        canonicalCaps(cfg.Security.Capabilities.Drop),
		CapAdd:         canonicalCaps(cfg.Security.Capabilities.Add),
		ReadonlyRootfs: cfg.Security.ReadOnly,
		NetworkMode:    container.NetworkMode(cfg.Network),
	}
	if cfg.Security.NoNewPrivileges {
		h.SecurityOpt = []string{"no-new-privileges=true"}
	}
	taken := map[string]bool{}
	for _, m := range cfg.Volumes {
		mt := mount.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		if m.EffectiveType() == contract.MountBind {
			mt.Type = mount.TypeBind
		} else {
			mt.Type = mount.TypeVolume
			// Applies when the engine makes the volume on the fly, so that
			// such volumes are managed and reaped with their session.
			mt.VolumeOptions = &mount.VolumeOptions{Labels: l.withUser(nil, map[string]string{l.session: cfg.SessionID})}
		}
		h.Mounts = append(h.Mounts, mt)
		taken[path.Clean(m.Target)] = true
	}
	switch mode {
	case diskTmpfs:
		h.Tmpfs = map[string]string{}
		if !taken[tmpTarget] {
			h.Tmpfs[tmpTarget] = tmpfsOptions(cfg.Resources.Disk)
		}
		if e.podman {
			for _, t := range podmanTmpfsTargets {
				if !taken[t] {
					h.Tmpfs[t] = readOnlyTmpfsOptions
				}
			}
		}
		if len(h.Tmpfs) == 0 {
			h.Tmpfs = nil
		}
	case diskQuota:
		h.StorageOpt = map[string]string{"size": strconv.FormatInt(cfg.Resources.Disk, 10) + "M"}
	}
	s.host = h
	if cfg.Network != "" {
		s.network = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{cfg.Network: {}}}
	}
	hash := requestHash(s) // of the labels without it
	s.config.Labels[l.request] = hash
	return s, nil
}

// requestHash is a hash of what a create of s sends but the name: equal
// for the attempts of one create, different for a create with the same
// key and another config. It tells adopt whether the holder of a key's
// name was made from the request at hand (see "Idempotent create").
func requestHash(s spec) string {
	b, _ := json.Marshal([]any{s.config, s.host, s.network})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:32]
}

// appliedLimits reads the limits the engine reports for a container
// created from s, in the units of [contract.EngineLimits].
func appliedLimits(s spec, h *container.HostConfig) contract.EngineLimits {
	a := contract.EngineLimits{NanoCPUs: h.NanoCPUs, MemoryBytes: h.Memory}
	if h.PidsLimit != nil {
		a.PIDs = *h.PidsLimit
	}
	switch {
	case s.mode == diskTmpfs && s.host.Tmpfs[tmpTarget] == "":
		// The caller's own volume at /tmp on a read-only root: nothing
		// the driver writes to is unbounded (see "Disk limit").
		a.DiskBytes = s.limits.DiskBytes
	case s.mode == diskTmpfs:
		a.DiskBytes = optionSize(h.Tmpfs[tmpTarget])
	case s.mode == diskQuota:
		a.DiskBytes = byteSize(h.StorageOpt["size"])
	}
	return a
}

// optionSize returns the size= option of a mount's comma-separated
// options in bytes, or -1 when there is none or it does not parse.
func optionSize(opts string) int64 {
	for o := range strings.SplitSeq(opts, ",") {
		if v, ok := strings.CutPrefix(o, "size="); ok {
			return byteSize(v)
		}
	}
	return -1
}

// byteSize parses a size as mount options and storage options write it:
// a decimal number of bytes with an optional k, m or g suffix (powers of
// 1024, either case). It returns -1 when s is not such a size or does not
// fit in an int64.
func byteSize(s string) int64 {
	shift := 0
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			shift = 10
		case 'm', 'M':
			shift = 20
		case 'g', 'G':
			shift = 30
		}
		if shift > 0 {
			s = s[:n-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > math.MaxInt64>>shift {
		return -1
	}
	return v << shift
}

// tmpfsOptions are the mount options of the tmpfs of a read-only root
// filesystem: writable by every user like /tmp, no devices, no setuid, no
// executables, and at most diskMB megabytes.
func tmpfsOptions(diskMB int64) string {
	return fmt.Sprintf("rw,nosuid,nodev,noexec,size=%dm,mode=1777", diskMB)
}

// canonicalCaps returns the capabilities in the form Docker documents:
// "ALL" or "CAP_NAME".
func canonicalCaps(caps []string) strslice.StrSlice {
	if len(caps) == 0 {
		return nil
	}
	out := make(strslice.StrSlice, 0, len(caps))
	for _, c := range caps {
		c = contract.CanonicalCapability(c)
		if c != "ALL" {
			c = "CAP_" + c
		}
		out = append(out, c)
	}
	return out
}

// containerName returns the name of a new container: derived from the
// idempotency key when there is one, so that a retried create meets the
// container of the first attempt, else from the session and a random part.
func (d *Driver) containerName(sessionID, key string) string {
	if key != "" {
		sum := sha256.Sum256([]byte(d.labels.prefix + "\x00" + key))
		return namePrefix + "k" + hex.EncodeToString(sum[:])[:24]
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return namePrefix + sanitizeName(sessionID) + "-" + hex.EncodeToString(b[:])
}

// sanitizeName keeps the characters a container name may have and at most
// 40 of them.
func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "session"
	}
	return b.String()
}
