package contract

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"time"
)

// ContainerConfig describes a container to create. Its JSON form is the
// contract's: every field is required except command. Build one with
// [NewContainerConfig] to start from secure defaults.
type ContainerConfig struct {
	SessionID string            `json:"sessionId"`         // session the container belongs to
	Image     string            `json:"image"`             // image reference, e.g. "alpine:3.20"
	Command   []string          `json:"command,omitempty"` // overrides the image's command when non-nil
	Env       map[string]string `json:"env"`               // environment variables
	Labels    map[string]string `json:"labels"`            // container labels
	Resources ResourceLimits    `json:"resources"`         // resource constraints
	Volumes   []VolumeMount     `json:"volumes"`           // volume and bind mounts
	Network   string            `json:"network"`           // network name; "" is the driver's default network
	Security  SecurityOptions   `json:"security"`          // security settings
}

// MarshalJSON writes the contract's JSON form: nil maps and slices of
// required fields become {} and [], so the document always decodes again.
func (c ContainerConfig) MarshalJSON() ([]byte, error) {
	type plain ContainerConfig
	p := plain(c)
	p.Env = nonNilMap(p.Env)
	p.Labels = nonNilMap(p.Labels)
	if p.Volumes == nil {
		p.Volumes = []VolumeMount{}
	}
	return json.Marshal(p)
}

// UnmarshalJSON decodes the contract's JSON form strictly, as
// [DecodeContainerConfig] does.
func (c *ContainerConfig) UnmarshalJSON(data []byte) error {
	cfg, err := DecodeContainerConfig(data)
	if err != nil {
		return err
	}
	*c = cfg
	return nil
}

// ResourceLimits bounds what a container may use. Zero CPU means no CPU
// limit in the contract's schema; [NewResourceLimits] never produces it.
type ResourceLimits struct {
	CPU    float64 `json:"cpu"`    // CPU cores, >= 0
	Memory int64   `json:"memory"` // memory in MB, >= 1
	Disk   int64   `json:"disk"`   // writable disk space in MB, >= 1
	PIDs   int64   `json:"pids"`   // process count limit, >= 1
}

// UnmarshalJSON reads the contract's JSON form, with keys matched exactly
// (see the package doc).
func (l *ResourceLimits) UnmarshalJSON(data []byte) error {
	return decodeExact(data, l)
}

// SecurityOptions are the container's security settings. The zero value is
// not secure; start from [DefaultSecurityOptions] or [NewSecurityOptions].
type SecurityOptions struct {
	ReadOnly        bool         `json:"readOnly"`        // read-only root filesystem
	NoNewPrivileges bool         `json:"noNewPrivileges"` // disable privilege escalation
	User            string       `json:"user"`            // user to run as, "uid[:gid]" or a name
	Capabilities    Capabilities `json:"capabilities"`    // Linux capabilities
}

// UnmarshalJSON reads the contract's JSON form, with keys matched exactly
// (see the package doc).
func (s *SecurityOptions) UnmarshalJSON(data []byte) error {
	return decodeExact(data, s)
}

// Capabilities lists Linux capabilities to drop and add, by name
// ("NET_BIND_SERVICE" or "CAP_NET_BIND_SERVICE"; "ALL" for every one).
type Capabilities struct {
	Drop []string `json:"drop"`
	Add  []string `json:"add"`
}

// MarshalJSON writes nil lists as [], as the contract requires both.
func (c Capabilities) MarshalJSON() ([]byte, error) {
	type plain Capabilities
	p := plain(c)
	if p.Drop == nil {
		p.Drop = []string{}
	}
	if p.Add == nil {
		p.Add = []string{}
	}
	return json.Marshal(p)
}

// UnmarshalJSON reads the contract's JSON form, with keys matched exactly
// (see the package doc).
func (c *Capabilities) UnmarshalJSON(data []byte) error {
	return decodeExact(data, c)
}

// MountType is the kind of a [VolumeMount].
type MountType string

// Mount types. An empty MountType means [MountBind] when the source is an
// absolute path and [MountVolume] otherwise.
const (
	MountBind   MountType = "bind"
	MountVolume MountType = "volume"
)

// VolumeMount mounts a volume or a host path into the container.
type VolumeMount struct {
	Source   string    `json:"source"`             // volume name or absolute host path
	Target   string    `json:"target"`             // absolute path in the container
	ReadOnly bool      `json:"readOnly,omitempty"` // mount read-only
	Type     MountType `json:"type,omitempty"`     // "bind" or "volume"
}

// UnmarshalJSON reads the contract's JSON form, with keys matched exactly
// (see the package doc).
func (m *VolumeMount) UnmarshalJSON(data []byte) error {
	return decodeExact(data, m)
}

// EffectiveType returns the mount's type, resolving an empty Type from the
// source as documented at [MountType].
func (m VolumeMount) EffectiveType() MountType {
	if m.Type != "" {
		return m.Type
	}
	if len(m.Source) > 0 && m.Source[0] == '/' {
		return MountBind
	}
	return MountVolume
}

// ContainerStatus is the contract's fine-grained container status.
type ContainerStatus string

// Container statuses.
const (
	StatusCreated  ContainerStatus = "created"  // created, not started
	StatusRunning  ContainerStatus = "running"  // running
	StatusPaused   ContainerStatus = "paused"   // paused
	StatusStopped  ContainerStatus = "stopped"  // stopped by a stop request
	StatusRemoving ContainerStatus = "removing" // being removed
	StatusExited   ContainerStatus = "exited"   // its process exited by itself
	StatusDead     ContainerStatus = "dead"     // in an error state
)

// ContainerState is the contract's coarse runtime state.
type ContainerState string

// Container states.
const (
	StateRunning    ContainerState = "running"    // actively running (running, paused)
	StateTerminated ContainerState = "terminated" // not running (created, stopped, exited, removing)
	StateError      ContainerState = "error"      // dead
)

// StateOf returns the state that goes with a status.
func StateOf(s ContainerStatus) ContainerState {
	switch s {
	case StatusRunning, StatusPaused:
		return StateRunning
	case StatusDead:
		return StateError
	}
	return StateTerminated
}

// ContainerInstance describes a container a driver manages. In JSON,
// createdAt and startedAt are Unix milliseconds; startedAt is absent until
// the container has started.
type ContainerInstance struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	SessionID string            `json:"sessionId"`
	Image     string            `json:"image"`
	Status    ContainerStatus   `json:"status"`
	State     ContainerState    `json:"state"`
	Endpoint  string            `json:"endpoint"` // address the container is reached at, "" if none
	CreatedAt time.Time         `json:"-"`
	StartedAt time.Time         `json:"-"` // zero until started
	Labels    map[string]string `json:"labels"`
	Resources ResourceLimits    `json:"resources"` // the limits actually applied
}

type containerInstanceJSON struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	SessionID string            `json:"sessionId"`
	Image     string            `json:"image"`
	Status    ContainerStatus   `json:"status"`
	State     ContainerState    `json:"state"`
	Endpoint  string            `json:"endpoint"`
	CreatedAt int64             `json:"createdAt"`
	StartedAt *int64            `json:"startedAt,omitempty"`
	Labels    map[string]string `json:"labels"`
	Resources ResourceLimits    `json:"resources"`
}

// MarshalJSON writes the contract's JSON form.
func (c ContainerInstance) MarshalJSON() ([]byte, error) {
	return json.Marshal(containerInstanceJSON{
		ID: c.ID, Name: c.Name, SessionID: c.SessionID, Image: c.Image,
		Status: c.Status, State: c.State, Endpoint: c.Endpoint,
		CreatedAt: toMillis(c.CreatedAt), StartedAt: optMillis(c.StartedAt),
		Labels: nonNilMap(c.Labels), Resources: c.Resources,
	})
}

// UnmarshalJSON reads the contract's JSON form, with keys matched exactly
// (see the package doc).
func (c *ContainerInstance) UnmarshalJSON(data []byte) error {
	var j containerInstanceJSON
	if err := decodeExact(data, &j); err != nil {
		return err
	}
	*c = ContainerInstance{
		ID: j.ID, Name: j.Name, SessionID: j.SessionID, Image: j.Image,
		Status: j.Status, State: j.State, Endpoint: j.Endpoint,
		CreatedAt: fromMillis(j.CreatedAt), Labels: j.Labels, Resources: j.Resources,
	}
	if j.StartedAt != nil {
		c.StartedAt = fromMillis(*j.StartedAt)
	}
	return nil
}

// ContainerFilter selects containers; every set field must match. Label
// matches containers that carry every given key with the given value.
type ContainerFilter struct {
	SessionID string            `json:"sessionId,omitempty"`
	Status    ContainerStatus   `json:"status,omitempty"`
	State     ContainerState    `json:"state,omitempty"`
	Label     map[string]string `json:"label,omitempty"`
}

// UnmarshalJSON reads the contract's JSON form, with keys matched exactly
// (see the package doc).
func (f *ContainerFilter) UnmarshalJSON(data []byte) error {
	return decodeExact(data, f)
}

// Matches reports whether c passes the filter.
func (f ContainerFilter) Matches(c ContainerInstance) bool {
	if f.SessionID != "" && c.SessionID != f.SessionID {
		return false
	}
	if f.Status != "" && c.Status != f.Status {
		return false
	}
	if f.State != "" && c.State != f.State {
		return false
	}
	for k, v := range f.Label {
		if got, ok := c.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// StopOptions tune StopContainer. In JSON, timeout is in whole
// milliseconds, rounded away from zero as every duration (see the package
// doc): a nonzero timeout is never written as 0, the driver's default.
type StopOptions struct {
	// Timeout is how long the container gets to exit after SIGTERM before it
	// is killed. Zero means the driver's default (10s for the bundled
	// drivers). A negative timeout means nothing in the contract ("graceful
	// stop timeout in ms"), and a driver refuses it with CONFIGURATION
	// rather than guess.
	Timeout time.Duration `json:"-"`
	// Force kills the container at once.
	Force bool `json:"force,omitempty"`
}

type stopOptionsJSON struct {
	Timeout *int64 `json:"timeout,omitempty"`
	Force   bool   `json:"force,omitempty"`
}

// MarshalJSON writes the contract's JSON form.
func (o StopOptions) MarshalJSON() ([]byte, error) {
	j := stopOptionsJSON{Force: o.Force}
	if o.Timeout != 0 {
		ms := durationMillis(o.Timeout)
		j.Timeout = &ms
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the contract's JSON form, with keys matched exactly
// (see the package doc).
func (o *StopOptions) UnmarshalJSON(data []byte) error {
	var j stopOptionsJSON
	if err := decodeExact(data, &j); err != nil {
		return err
	}
	*o = StopOptions{Force: j.Force}
	if j.Timeout != nil {
		o.Timeout = millisDuration(*j.Timeout)
	}
	return nil
}

// LogOptions tune GetContainerLogs. In JSON, since is Unix milliseconds.
// A negative Tail means nothing in the contract ("number of lines from
// end"), and a driver refuses it with CONFIGURATION rather than guess.
type LogOptions struct {
	Follow     bool      `json:"-"` // follow the output; see [LogStreamer]
	Tail       int       `json:"-"` // lines from the end; 0 means all
	Since      time.Time `json:"-"` // only output at or after this time; zero means all
	Timestamps bool      `json:"-"` // prefix each line with its RFC 3339 timestamp
}

type logOptionsJSON struct {
	Follow     bool   `json:"follow,omitempty"`
	Tail       int    `json:"tail,omitempty"`
	Since      *int64 `json:"since,omitempty"`
	Timestamps bool   `json:"timestamps,omitempty"`
}

// MarshalJSON writes the contract's JSON form.
func (o LogOptions) MarshalJSON() ([]byte, error) {
	return json.Marshal(logOptionsJSON{Follow: o.Follow, Tail: o.Tail, Since: optMillis(o.Since), Timestamps: o.Timestamps})
}

// UnmarshalJSON reads the contract's JSON form, with keys matched exactly
// (see the package doc).
func (o *LogOptions) UnmarshalJSON(data []byte) error {
	var j logOptionsJSON
	if err := decodeExact(data, &j); err != nil {
		return err
	}
	*o = LogOptions{Follow: j.Follow, Tail: j.Tail, Timestamps: j.Timestamps}
	if j.Since != nil {
		o.Since = fromMillis(*j.Since)
	}
	return nil
}

// HealthStatus is the overall status in [DriverHealth].
type HealthStatus string

// Health statuses.
const (
	Healthy   HealthStatus = "healthy"
	Unhealthy HealthStatus = "unhealthy"
)

// DriverHealth reports a driver's health. In JSON, uptime is in whole
// milliseconds, rounded away from zero.
type DriverHealth struct {
	Status     HealthStatus    `json:"status"`
	Version    string          `json:"version"` // the engine's or driver's version
	Uptime     time.Duration   `json:"-"`       // time since the driver was made
	Containers ContainerCounts `json:"containers"`
	Error      string          `json:"error,omitempty"` // why it is unhealthy
	// Limits are the current concurrency limits of a rate limit layer on
	// the way, which sets them; zero when there is none. They are not part
	// of the JSON form.
	Limits ConcurrencyLimits `json:"-"`
}

// ConcurrencyLimits are the calls a rate limit layer lets run at once, in
// [DriverHealth]: engine work (creates, starts, stops, removes; an
// adaptive limit moves) and reads. Zero means no limit or no such layer.
type ConcurrencyLimits struct {
	Work int
	Read int
}

// ContainerCounts counts the driver's containers in [DriverHealth]. Stopped
// counts every container that does not run.
type ContainerCounts struct {
	Total   int `json:"total"`
	Running int `json:"running"`
	Stopped int `json:"stopped"`
}

// UnmarshalJSON reads the contract's JSON form, with keys matched exactly
// (see the package doc).
func (c *ContainerCounts) UnmarshalJSON(data []byte) error {
	return decodeExact(data, c)
}

type driverHealthJSON struct {
	Status     HealthStatus    `json:"status"`
	Version    string          `json:"version"`
	Uptime     int64           `json:"uptime"`
	Containers ContainerCounts `json:"containers"`
	Error      string          `json:"error,omitempty"`
}

// MarshalJSON writes the contract's JSON form.
func (h DriverHealth) MarshalJSON() ([]byte, error) {
	return json.Marshal(driverHealthJSON{h.Status, h.Version, durationMillis(h.Uptime), h.Containers, h.Error})
}

// UnmarshalJSON reads the contract's JSON form, with keys matched exactly
// (see the package doc).
func (h *DriverHealth) UnmarshalJSON(data []byte) error {
	var j driverHealthJSON
	if err := decodeExact(data, &j); err != nil {
		return err
	}
	*h = DriverHealth{Status: j.Status, Version: j.Version, Uptime: millisDuration(j.Uptime), Containers: j.Containers, Error: j.Error}
	return nil
}

// VolumeConfig describes a volume to create.
type VolumeConfig struct {
	Name   string            `json:"name"`
	Driver string            `json:"driver,omitempty"` // "" is the engine's default ("local")
	Labels map[string]string `json:"labels,omitempty"`
}

// UnmarshalJSON reads the contract's JSON form, with keys matched exactly
// (see the package doc).
func (c *VolumeConfig) UnmarshalJSON(data []byte) error {
	return decodeExact(data, c)
}

// Volume describes a volume. In JSON, createdAt is Unix milliseconds.
type Volume struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Driver     string            `json:"driver"`
	Mountpoint string            `json:"mountpoint"`
	CreatedAt  time.Time         `json:"-"`
	Labels     map[string]string `json:"labels"`
}

type volumeJSON struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Driver     string            `json:"driver"`
	Mountpoint string            `json:"mountpoint"`
	CreatedAt  int64             `json:"createdAt"`
	Labels     map[string]string `json:"labels"`
}

// MarshalJSON writes the contract's JSON form.
func (v Volume) MarshalJSON() ([]byte, error) {
	return json.Marshal(volumeJSON{v.ID, v.Name, v.Driver, v.Mountpoint, toMillis(v.CreatedAt), nonNilMap(v.Labels)})
}

// UnmarshalJSON reads the contract's JSON form, with keys matched exactly
// (see the package doc).
func (v *Volume) UnmarshalJSON(data []byte) error {
	var j volumeJSON
	if err := decodeExact(data, &j); err != nil {
		return err
	}
	*v = Volume{j.ID, j.Name, j.Driver, j.Mountpoint, fromMillis(j.CreatedAt), j.Labels}
	return nil
}

// NetworkConfig describes a network to create.
type NetworkConfig struct {
	Name    string            `json:"name"`
	Driver  string            `json:"driver,omitempty"` // "" is the engine's default ("bridge")
	Labels  map[string]string `json:"labels,omitempty"`
	Options map[string]string `json:"options,omitempty"` // driver options
}

// UnmarshalJSON reads the contract's JSON form, with keys matched exactly
// (see the package doc).
func (c *NetworkConfig) UnmarshalJSON(data []byte) error {
	return decodeExact(data, c)
}

// Network describes a network. In JSON, createdAt is Unix milliseconds.
type Network struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Driver    string            `json:"driver"`
	CreatedAt time.Time         `json:"-"`
	Labels    map[string]string `json:"labels"`
}

type networkJSON struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Driver    string            `json:"driver"`
	CreatedAt int64             `json:"createdAt"`
	Labels    map[string]string `json:"labels"`
}

// MarshalJSON writes the contract's JSON form.
func (n Network) MarshalJSON() ([]byte, error) {
	return json.Marshal(networkJSON{n.ID, n.Name, n.Driver, toMillis(n.CreatedAt), nonNilMap(n.Labels)})
}

// UnmarshalJSON reads the contract's JSON form, with keys matched exactly
// (see the package doc).
func (n *Network) UnmarshalJSON(data []byte) error {
	var j networkJSON
	if err := decodeExact(data, &j); err != nil {
		return err
	}
	*n = Network{j.ID, j.Name, j.Driver, fromMillis(j.CreatedAt), j.Labels}
	return nil
}

// decodeExact decodes the JSON object data into the struct that dst points
// to, giving each field the value of the key that is its JSON name to the
// letter, as JSON.parse and the contract's TypeScript types read it.
// encoding/json also matches a key that differs only in case, so that
// {"id":"a","ID":"b"} would give ID "b"; here "ID" is a key of no field,
// ignored like any other. Of two equal keys the last wins, as in
// JSON.parse. A field's own UnmarshalJSON reads its value; dst's own is
// never called, so a type's UnmarshalJSON may pass itself.
func decodeExact(data []byte, dst any) error {
	v := reflect.ValueOf(dst).Elem()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		if te, ok := err.(*json.UnmarshalTypeError); ok {
			te.Type = v.Type()
		}
		return err
	}
	for i := range v.NumField() {
		name, ok := jsonName(v.Type().Field(i))
		raw, found := obj[name]
		if !ok || !found {
			continue
		}
		if err := json.Unmarshal(raw, v.Field(i).Addr().Interface()); err != nil {
			if te, ok := err.(*json.UnmarshalTypeError); ok {
				te.Struct, te.Field = v.Type().Name(), join(name, te.Field)
			}
			return err
		}
	}
	return nil
}

// jsonName returns the key encoding/json gives the struct field f, and
// false when it has none (unexported, or tagged "-").
func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	name, _, hasOpts := strings.Cut(f.Tag.Get("json"), ",")
	switch {
	case name == "-" && !hasOpts:
		return "", false
	case name == "":
		return f.Name, true
	}
	return name, true
}

// toMillis returns t in Unix milliseconds, rounded down as
// time.UnixMilli does, or 0 for the zero time. 0 means absent, so a
// nonzero time in the first millisecond of the epoch, 1970-01-01T00:00:00Z
// itself included, is 1: a since filter at the epoch never becomes "all
// output".
func toMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	if ms := t.UnixMilli(); ms != 0 {
		return ms
	}
	return 1
}

// optMillis returns toMillis of t, or nil for the zero time.
func optMillis(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := toMillis(t)
	return &ms
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// durationMillis returns d in whole milliseconds, rounded away from zero
// (time.Duration.Milliseconds truncates toward it), as the package doc
// says.
func durationMillis(d time.Duration) int64 {
	ms := d.Milliseconds()
	switch r := d % time.Millisecond; {
	case r > 0:
		ms++
	case r < 0:
		ms--
	}
	return ms
}

// millisDuration returns ms milliseconds as a Duration, saturated at the
// longest Duration of its sign: multiplying would wrap around, and could
// turn a long timeout into 0 or a negative one.
func millisDuration(ms int64) time.Duration {
	const most = int64(math.MaxInt64 / time.Millisecond)
	switch {
	case ms > most:
		return math.MaxInt64
	case ms < -most:
		return math.MinInt64
	}
	return time.Duration(ms) * time.Millisecond
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
