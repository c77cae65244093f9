package dockerdriver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
)

// engine is what the driver knows of the engine behind the API: Docker, or
// Podman through its Docker-compatible service. The driver learns it from
// the engine's /version, never from an option.
type engine struct {
	podman  bool
	version string // the engine's own version, e.g. "20.10.24+dfsg1" or "4.3.1"
}

// podmanComponent is the name Podman's /version gives its engine among
// the Components.
const podmanComponent = "Podman Engine"

// engineOf reads the engine from its /version answer.
func engineOf(v types.Version) engine {
	for _, c := range v.Components {
		if c.Name == podmanComponent {
			return engine{podman: true, version: c.Version}
		}
	}
	return engine{version: v.Version}
}

// String names the engine and its version as HealthCheck reports it:
// Docker's version alone, as the API gives it, and "Podman <version>".
func (e engine) String() string {
	if e.podman {
		return "Podman " + e.version
	}
	return e.version
}

// engine returns the engine behind the API, asking it once per driver.
func (d *Driver) engine(ctx context.Context) (engine, error) {
	d.mu.Lock()
	e := d.eng
	d.mu.Unlock()
	if e != nil {
		return *e, nil
	}
	v, err := d.cli.ServerVersion(ctx)
	if err != nil {
		return engine{}, err
	}
	got := engineOf(v)
	d.learnt(got)
	return got, nil
}

// learnt records the engine the driver found.
func (d *Driver) learnt(e engine) {
	d.mu.Lock()
	d.eng = &e
	d.mu.Unlock()
}

// podmanTmpfsTargets are the directories where Podman's Docker-compatible
// API mounts a writable tmpfs of no size of its own on a read-only root
// filesystem (it always asks for "read-only-tmpfs"). The driver mounts
// read-only tmpfs there itself, with the image's content copied up, so
// that the root filesystem stays read-only as on Docker and /tmp stays the
// only writable place the disk limit bounds.
var podmanTmpfsTargets = []string{"/run", "/var/tmp"}

// readOnlyTmpfsOptions are the options of those mounts.
const readOnlyTmpfsOptions = "ro,nosuid,nodev,noexec"

// libpodInspect is the part of Podman's own inspect the driver checks: the
// capability sets of the container's process, as its OCI spec has them.
// Podman reports the capabilities of its Docker-compatible inspect
// relative to a default set of its own choice (CapDrop lists that set's
// capabilities one by one instead of "ALL"); these are the sets the
// runtime applies.
type libpodInspect struct {
	EffectiveCaps *[]string `json:"EffectiveCaps"`
	BoundingCaps  *[]string `json:"BoundingCaps"`
	hasBounding   bool
}

// libpodAPIVersion is the oldest version of Podman's own API, which every
// Podman from 4.0 serves.
const libpodAPIVersion = "v4.0.0"

// podmanCaps reads the capability sets of container id from Podman's own
// API, through the client's connection to the engine.
func (d *Driver) podmanCaps(ctx context.Context, id string) (libpodInspect, error) {
	var out libpodInspect
	host, err := url.Parse(d.cli.DaemonHost())
	if err != nil {
		return out, err
	}
	u := url.URL{Scheme: "http", Host: host.Host, Path: "/" + libpodAPIVersion + "/libpod/containers/" + url.PathEscape(id) + "/json"}
	switch host.Scheme {
	case "unix", "npipe":
		u.Host = "podman" // the transport dials the socket
	}
	hc := d.cli.HTTPClient()
	if tr, ok := hc.Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
		u.Scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return out, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return out, err
	}
	if resp.StatusCode != http.StatusOK {
		var msg struct{ Message string }
		_ = json.Unmarshal(body, &msg)
		err := fmt.Errorf("podman inspect of %s answered %s: %s", id, resp.Status, msg.Message)
		switch resp.StatusCode {
		case http.StatusNotFound:
			return out, cerrdefs.ErrNotFound.WithMessage(err.Error())
		case http.StatusServiceUnavailable:
			return out, cerrdefs.ErrUnavailable.WithMessage(err.Error())
		}
		return out, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return out, fmt.Errorf("podman inspect of %s: %w", id, err)
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return out, fmt.Errorf("podman inspect of %s: %w", id, err)
	}
	_, out.hasBounding = fields["BoundingCaps"]
	return out, nil
}

// podmanCapsDiff checks the capability sets Podman will give the
// container's process against what s asks. The bounding set limits every
// capability the process can ever hold, whatever its user: a dropped
// capability must not be in it, an added one must. Dropping ALL therefore
// means a bounding set of exactly the added capabilities, whatever Podman's
// default set is. The effective set must lie within the bounding set.
//
// Podman reports an empty set as null, the same as a spec without
// capabilities; it cannot inspect such a spec without failing, so an
// answer means the sets are as given, and null is empty. An answer
// without the BoundingCaps field (an engine that does not report it) fails.
func podmanCapsDiff(s spec, p libpodInspect) string {
	if !p.hasBounding {
		return "the dropped capabilities (the engine does not report the capabilities it applies)"
	}
	bounding := capSet(p.BoundingCaps)
	effective := capSet(p.EffectiveCaps)
	var diffs []string
	drop := s.host.CapDrop
	dropAll := slices.Contains(drop, "ALL")
	adds := []string(s.host.CapAdd)
	add := capSet(&adds)
	for c := range bounding {
		if dropAll && !add[c] || slices.Contains(drop, c) {
			diffs = append(diffs, "the dropped capabilities")
			break
		}
	}
	for c := range add {
		if !bounding[c] {
			diffs = append(diffs, "the added capabilities")
			break
		}
	}
	for c := range effective {
		if !bounding[c] {
			diffs = append(diffs, "the effective capabilities")
			break
		}
	}
	return strings.Join(diffs, ", ")
}

// capSet returns the capabilities as "CAP_NAME", uppercase.
func capSet(caps *[]string) map[string]bool {
	m := map[string]bool{}
	if caps == nil {
		return m
	}
	for _, c := range *caps {
		c = strings.ToUpper(c)
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		m[c] = true
	}
	return m
}

// securityOptions returns the security options as a set, with
// "no-new-privileges" in one spelling: Docker reports what was sent
// ("no-new-privileges=true"), Podman "no-new-privileges". A value other
// than true or an unknown option stays as it is, so it differs.
func securityOptions(opts []string) []string {
	out := make([]string, 0, len(opts))
	for _, o := range opts {
		k, v, hasValue := strings.Cut(o, "=")
		if !hasValue {
			k, v, hasValue = strings.Cut(o, ":")
		}
		if k == "no-new-privileges" && (!hasValue || v == "true") {
			o = "no-new-privileges"
		}
		out = append(out, o)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// tmpfsFlags are the mount options the driver's own tmpfs mounts have and
// that the engine must report for them: the last of each pair counts, as
// in mount(8).
var tmpfsFlags = [][2]string{{"suid", "nosuid"}, {"dev", "nodev"}, {"exec", "noexec"}, {"rw", "ro"}}

// harmlessTmpfsOptions are options an engine may add to a tmpfs mount
// without making it less confined: propagation and Podman's copy of the
// image's content into the new mount.
var harmlessTmpfsOptions = map[string]bool{
	"rprivate": true, "private": true, "rslave": true, "slave": true,
	"tmpcopyup": true, "notmpcopyup": true,
}

// tmpfsDiff compares the options an engine reports for a tmpfs mount with
// the options the driver asked. Each flag of tmpfsFlags must come out as
// asked, size= and mode= must be as asked (and given once), and any other
// option must be harmless. It returns "" when they agree.
func tmpfsDiff(want, got string) string {
	w, g := parseTmpfs(want), parseTmpfs(got)
	if g.dup != "" {
		return "option " + g.dup + " given twice"
	}
	for _, f := range tmpfsFlags {
		if w.flags[f[0]] != g.flags[f[0]] {
			return "not " + w.flags[f[0]]
		}
	}
	for _, k := range []string{"size", "mode"} {
		if w.values[k] != g.values[k] {
			return fmt.Sprintf("%s=%s instead of %s=%s", k, g.values[k], k, w.values[k])
		}
	}
	for _, o := range g.other {
		if !harmlessTmpfsOptions[o] {
			return "option " + o
		}
	}
	return ""
}

type tmpfsOpts struct {
	flags  map[string]string // the first of a tmpfsFlags pair -> the one that counts
	values map[string]string // size, mode -> value as written
	other  []string
	dup    string // a valued option given more than once
}

func parseTmpfs(opts string) tmpfsOpts {
	t := tmpfsOpts{flags: map[string]string{}, values: map[string]string{}}
	for _, f := range tmpfsFlags {
		t.flags[f[0]] = f[0] // the kernel's default: suid, dev, exec, rw
	}
options:
	for o := range strings.SplitSeq(opts, ",") {
		if o == "" {
			continue
		}
		for _, f := range tmpfsFlags {
			if o == f[0] || o == f[1] {
				t.flags[f[0]] = o
				continue options
			}
		}
		if k, v, ok := strings.Cut(o, "="); ok && (k == "size" || k == "mode") {
			if old, seen := t.values[k]; seen && old != v {
				t.dup = k
			}
			if k == "size" {
				v = fmt.Sprint(byteSize(v))
			}
			t.values[k] = v
			continue
		}
		t.other = append(t.other, o)
	}
	return t
}

// mountsApplied reports whether the container has exactly the volumes and binds
// asked, with their read-only flags. Docker reports them in
// HostConfig.Mounts as sent; Podman leaves that empty and reports the
// mounts it made in the container's Mounts.
func mountsApplied(e engine, want []containerMount, c container.InspectResponse) bool {
	var got []containerMount
	if e.podman {
		for _, m := range c.Mounts {
			got = append(got, containerMount{target: m.Destination, readOnly: !m.RW, typ: string(m.Type)})
		}
	} else {
		for _, m := range c.HostConfig.Mounts {
			got = append(got, containerMount{target: m.Target, readOnly: m.ReadOnly, typ: string(m.Type)})
		}
	}
	return len(got) == len(want) && !slices.ContainsFunc(want, func(m containerMount) bool {
		return !slices.Contains(got, m)
	})
}

// containerMount is a volume or bind as the checks compare it.
type containerMount struct {
	target   string
	readOnly bool
	typ      string
}

// stoppedOnKill reports whether a kill the engine refused with a conflict
// was refused because the container does not run: Docker says "is not
// running" (409), Podman "can only kill running containers ... container
// state improper" (409 or 500).
func stoppedOnKill(err error) bool {
	return cerrdefs.IsConflict(err) && mentions(err, "not running") || mentions(err, "can only kill running containers")
}

// makeVolumes creates the named volumes of s's mounts that do not exist,
// with the labels Docker gives a volume it makes for a mount: Podman makes
// them without the labels asked, so the reaper would not see them.
func (d *Driver) makeVolumes(ctx context.Context, s spec) error {
	for _, m := range s.host.Mounts {
		if m.Type != mount.TypeVolume || m.VolumeOptions == nil {
			continue
		}
		_, err := d.cli.VolumeInspect(ctx, m.Source)
		if err == nil {
			continue
		}
		if !cerrdefs.IsNotFound(err) || ctx.Err() != nil {
			return mapErr(ctx, opCreate, "", err)
		}
		_, err = d.cli.VolumeCreate(ctx, volume.CreateOptions{Name: m.Source, Labels: m.VolumeOptions.Labels})
		if err != nil && !mentions(err, "already exists") {
			return mapErr(ctx, opCreate, "", err)
		}
	}
	return nil
}

// nameTaken reports whether a create failed because its container name is
// taken: Docker answers 409 "... is already in use", Podman 500 "... that
// name is already in use".
func nameTaken(err error) bool {
	return cerrdefs.IsConflict(err) && mentions(err, "already in use") || mentions(err, "that name is already in use")
}

// networkInUse reports whether a network remove failed because containers
// use the network: Docker answers 403 or 409, Podman 500 "network is being
// used".
func networkInUse(err error) bool {
	return cerrdefs.IsConflict(err) || cerrdefs.IsPermissionDenied(err) || mentions(err, "network is being used")
}
