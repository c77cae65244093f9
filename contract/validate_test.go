package contract_test

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/resilientdriver/resilient/contract"
)

// issuesOf returns the issues of a validation error, failing the test when
// err is not one.
func issuesOf(t *testing.T, err error) []contract.Issue {
	t.Helper()
	if err == nil {
		return nil
	}
	if !errors.Is(err, contract.ErrConfiguration) {
		t.Errorf("error %v does not match ErrConfiguration", err)
	}
	if contract.IsRetryable(err) {
		t.Errorf("validation error %v is retryable", err)
	}
	var ve *contract.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v holds no *ValidationError", err)
	}
	return ve.Issues
}

func paths(is []contract.Issue) []string {
	var out []string
	for _, i := range is {
		out = append(out, i.Path)
	}
	return out
}

func TestValidateContainerConfig(t *testing.T) {
	base := func() contract.ContainerConfig { return contract.NewContainerConfig("s1", "alpine:3.20") }
	tests := []struct {
		name   string
		modify func(*contract.ContainerConfig)
		want   []string // issue paths, in order
	}{
		{"defaults are valid", func(*contract.ContainerConfig) {}, nil},
		{"empty session", func(c *contract.ContainerConfig) { c.SessionID = "" }, []string{"sessionId"}},
		{"control char in session", func(c *contract.ContainerConfig) { c.SessionID = "a\nb" }, []string{"sessionId"}},
		{"empty image", func(c *contract.ContainerConfig) { c.Image = "" }, []string{"image"}},
		{"upper-case repository", func(c *contract.ContainerConfig) { c.Image = "Alpine" }, []string{"image"}},
		{"image with space", func(c *contract.ContainerConfig) { c.Image = "alpine latest" }, []string{"image"}},
		{"image with registry, port, tag and digest", func(c *contract.ContainerConfig) {
			c.Image = "registry.example.com:5000/team/app:v1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
		}, nil},
		{"image with short digest", func(c *contract.ContainerConfig) { c.Image = "app@sha256:abc" }, []string{"image"}},
		{"empty command", func(c *contract.ContainerConfig) { c.Command = []string{} }, []string{"command"}},
		{"NUL in command", func(c *contract.ContainerConfig) { c.Command = []string{"sh", "a\x00b"} }, []string{"command.1"}},
		{"env name with =", func(c *contract.ContainerConfig) { c.Env = map[string]string{"A=B": "x"} }, []string{"env.A=B"}},
		{"empty env name", func(c *contract.ContainerConfig) { c.Env = map[string]string{"": "x"} }, []string{"env"}},
		{"NUL in env value", func(c *contract.ContainerConfig) { c.Env = map[string]string{"A": "\x00"} }, []string{"env.A"}},
		{"empty label key", func(c *contract.ContainerConfig) { c.Labels = map[string]string{"": "x"} }, []string{"labels"}},
		{"negative cpu", func(c *contract.ContainerConfig) { c.Resources.CPU = -1 }, []string{"resources.cpu"}},
		{"zero cpu is valid", func(c *contract.ContainerConfig) { c.Resources.CPU = 0 }, nil},
		{"NaN cpu", func(c *contract.ContainerConfig) { c.Resources.CPU = math.NaN() }, []string{"resources.cpu"}},
		{"zero limits", func(c *contract.ContainerConfig) { c.Resources = contract.ResourceLimits{} },
			[]string{"resources.memory", "resources.disk", "resources.pids"}},
		{"bad mount type", func(c *contract.ContainerConfig) {
			c.Volumes = []contract.VolumeMount{{Source: "data", Target: "/data", Type: "tmpfs"}}
		}, []string{"volumes.0.type"}},
		{"relative target", func(c *contract.ContainerConfig) {
			c.Volumes = []contract.VolumeMount{{Source: "data", Target: "data"}}
		}, []string{"volumes.0.target"}},
		{"root target", func(c *contract.ContainerConfig) {
			c.Volumes = []contract.VolumeMount{{Source: "data", Target: "/"}}
		}, []string{"volumes.0.target"}},
		{"unclean bind source", func(c *contract.ContainerConfig) {
			c.Volumes = []contract.VolumeMount{{Source: "/srv/../etc", Target: "/x", Type: contract.MountBind}}
		}, []string{"volumes.0.source"}},
		{"relative bind source", func(c *contract.ContainerConfig) {
			c.Volumes = []contract.VolumeMount{{Source: "srv", Target: "/x", Type: contract.MountBind}}
		}, []string{"volumes.0.source"}},
		{"path as volume name", func(c *contract.ContainerConfig) {
			c.Volumes = []contract.VolumeMount{{Source: "/srv", Target: "/x", Type: contract.MountVolume}}
		}, []string{"volumes.0.source"}},
		{"valid mounts", func(c *contract.ContainerConfig) {
			c.Volumes = []contract.VolumeMount{{Source: "data", Target: "/data"}, {Source: "/srv/www", Target: "/www", ReadOnly: true}}
		}, nil},
		{"bad network name", func(c *contract.ContainerConfig) { c.Network = "net/../x" }, []string{"network"}},
		{"bad user", func(c *contract.ContainerConfig) { c.Security.User = "a b" }, []string{"security.user"}},
		{"unknown capability", func(c *contract.ContainerConfig) {
			c.Security.Capabilities.Add = []string{"NET_BIND_SERVICE", "FLY"}
		}, []string{"security.capabilities.add.1"}},
		{"capability spellings", func(c *contract.ContainerConfig) {
			c.Security.Capabilities.Add = []string{"cap_chown", "CAP_KILL", "net_raw"}
		}, nil},
		{"many issues at once", func(c *contract.ContainerConfig) {
			c.SessionID, c.Image, c.Resources.PIDs = "", "", 0
		}, []string{"sessionId", "image", "resources.pids"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.modify(&cfg)
			got := paths(issuesOf(t, contract.ValidateContainerConfig(cfg)))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("issue paths = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidateResourceLimits(t *testing.T) {
	if err := contract.ValidateResourceLimits(contract.DefaultResourceLimits()); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	got := paths(issuesOf(t, contract.ValidateResourceLimits(contract.ResourceLimits{CPU: -0.5, Memory: 0, Disk: -1, PIDs: 0})))
	want := []string{"cpu", "memory", "disk", "pids"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths = %q, want %q", got, want)
	}
}

func TestValidateSecurityOptions(t *testing.T) {
	if err := contract.ValidateSecurityOptions(contract.DefaultSecurityOptions()); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
	// The schema allows the zero value; judging it unsafe is a policy's job.
	if err := contract.ValidateSecurityOptions(contract.SecurityOptions{}); err != nil {
		t.Errorf("zero options invalid: %v", err)
	}
	got := paths(issuesOf(t, contract.ValidateSecurityOptions(contract.SecurityOptions{
		User:         "x:y:z",
		Capabilities: contract.Capabilities{Drop: []string{"NOPE"}},
	})))
	want := []string{"user", "capabilities.drop.0"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths = %q, want %q", got, want)
	}
}

func TestValidateVolumeAndNetworkConfig(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"volume ok", contract.ValidateVolumeConfig(contract.VolumeConfig{Name: "data-1", Labels: map[string]string{"a": "b"}}), nil},
		{"volume empty name", contract.ValidateVolumeConfig(contract.VolumeConfig{}), []string{"name"}},
		{"volume path name", contract.ValidateVolumeConfig(contract.VolumeConfig{Name: "../x"}), []string{"name"}},
		{"volume bad driver", contract.ValidateVolumeConfig(contract.VolumeConfig{Name: "v", Driver: "a b"}), []string{"driver"}},
		{"network ok", contract.ValidateNetworkConfig(contract.NetworkConfig{Name: "n1", Driver: "bridge", Options: map[string]string{"com.docker.network.bridge.enable_icc": "true"}}), nil},
		{"network empty name", contract.ValidateNetworkConfig(contract.NetworkConfig{}), []string{"name"}},
		{"network NUL option", contract.ValidateNetworkConfig(contract.NetworkConfig{Name: "n", Options: map[string]string{"k": "\x00"}}), []string{"options.k"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := paths(issuesOf(t, tt.err)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("paths = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	s := contract.DefaultSecurityOptions()
	if !s.ReadOnly || !s.NoNewPrivileges || s.User != "65534:65534" ||
		!reflect.DeepEqual(s.Capabilities.Drop, []string{"ALL"}) || len(s.Capabilities.Add) != 0 {
		t.Errorf("DefaultSecurityOptions() = %+v", s)
	}
	r := contract.DefaultResourceLimits()
	if r.CPU <= 0 || r.Memory <= 0 || r.Disk <= 0 || r.PIDs <= 0 {
		t.Errorf("DefaultResourceLimits() has an unbounded limit: %+v", r)
	}
	// Each call returns fresh slices.
	s.Capabilities.Drop[0] = "CHOWN"
	if contract.DefaultSecurityOptions().Capabilities.Drop[0] != "ALL" {
		t.Error("DefaultSecurityOptions shares its slices")
	}
}

func TestNewResourceLimits(t *testing.T) {
	d := contract.DefaultResourceLimits()
	tests := []struct {
		give, want contract.ResourceLimits
	}{
		{contract.ResourceLimits{}, d},
		{contract.ResourceLimits{Memory: 64}, contract.ResourceLimits{CPU: d.CPU, Memory: 64, Disk: d.Disk, PIDs: d.PIDs}},
		{contract.ResourceLimits{CPU: 0.25, PIDs: 10}, contract.ResourceLimits{CPU: 0.25, Memory: d.Memory, Disk: d.Disk, PIDs: 10}},
		{contract.ResourceLimits{Memory: -5}, contract.ResourceLimits{CPU: d.CPU, Memory: -5, Disk: d.Disk, PIDs: d.PIDs}},
	}
	for _, tt := range tests {
		if got := contract.NewResourceLimits(tt.give); got != tt.want {
			t.Errorf("NewResourceLimits(%+v) = %+v, want %+v", tt.give, got, tt.want)
		}
	}
}

func TestNewSecurityOptions(t *testing.T) {
	if got := contract.NewSecurityOptions(); !reflect.DeepEqual(got, contract.DefaultSecurityOptions()) {
		t.Errorf("NewSecurityOptions() = %+v, want the defaults", got)
	}
	got := contract.NewSecurityOptions(contract.RunAs("1000:1000"), contract.WritableRootFS(),
		contract.AllowNewPrivileges(), contract.AddCapabilities("NET_BIND_SERVICE"), nil)
	want := contract.SecurityOptions{
		User:         "1000:1000",
		Capabilities: contract.Capabilities{Drop: []string{"ALL"}, Add: []string{"NET_BIND_SERVICE"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("NewSecurityOptions(...) = %+v, want %+v", got, want)
	}
}

func TestCloneIsDeep(t *testing.T) {
	c := contract.NewContainerConfig("s", "alpine")
	c.Command = []string{"a"}
	c.Env["K"] = "v"
	c.Volumes = append(c.Volumes, contract.VolumeMount{Source: "v", Target: "/v"})
	d := c.Clone()
	d.Command[0], d.Env["K"], d.Volumes[0].Source = "b", "w", "x"
	d.Security.Capabilities.Drop[0] = "CHOWN"
	if c.Command[0] != "a" || c.Env["K"] != "v" || c.Volumes[0].Source != "v" || c.Security.Capabilities.Drop[0] != "ALL" {
		t.Errorf("Clone shares storage with the original: %+v", c)
	}
}

func TestFilterMatches(t *testing.T) {
	c := contract.ContainerInstance{SessionID: "s", Status: contract.StatusRunning, State: contract.StateRunning,
		Labels: map[string]string{"a": "1", "b": "2"}}
	tests := []struct {
		give contract.ContainerFilter
		want bool
	}{
		{contract.ContainerFilter{}, true},
		{contract.ContainerFilter{SessionID: "s", Status: contract.StatusRunning, State: contract.StateRunning}, true},
		{contract.ContainerFilter{SessionID: "t"}, false},
		{contract.ContainerFilter{Status: contract.StatusExited}, false},
		{contract.ContainerFilter{State: contract.StateTerminated}, false},
		{contract.ContainerFilter{Label: map[string]string{"a": "1"}}, true},
		{contract.ContainerFilter{Label: map[string]string{"a": "2"}}, false},
		{contract.ContainerFilter{Label: map[string]string{"c": ""}}, false},
	}
	for _, tt := range tests {
		if got := tt.give.Matches(c); got != tt.want {
			t.Errorf("%+v.Matches = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestStateOf(t *testing.T) {
	want := map[contract.ContainerStatus]contract.ContainerState{
		contract.StatusCreated: contract.StateTerminated, contract.StatusRunning: contract.StateRunning,
		contract.StatusPaused: contract.StateRunning, contract.StatusStopped: contract.StateTerminated,
		contract.StatusRemoving: contract.StateTerminated, contract.StatusExited: contract.StateTerminated,
		contract.StatusDead: contract.StateError,
	}
	for s, w := range want {
		if got := contract.StateOf(s); got != w {
			t.Errorf("StateOf(%s) = %s, want %s", s, got, w)
		}
	}
}

// checkIssue checks that err has exactly one issue, at path, and that its
// text is printable whatever the input was.
func checkIssue(t *testing.T, err error, path string) {
	t.Helper()
	if got := paths(issuesOf(t, err)); !reflect.DeepEqual(got, []string{path}) {
		t.Errorf("issue paths = %q, want [%q]", got, path)
	}
	if err != nil && !contract.Printable(err.Error()) {
		t.Errorf("error text is not printable: %q", err.Error())
	}
}

func TestValidateRefusesUnprintableIDs(t *testing.T) {
	for _, tt := range unprintable {
		t.Run(tt.name, func(t *testing.T) {
			cfg := contract.NewContainerConfig(tt.s, "alpine:3.20")
			checkIssue(t, contract.ValidateContainerConfig(cfg), "sessionId")

			cfg = contract.NewContainerConfig("s1", "alpine:3.20")
			cfg.Labels["k"+tt.s] = "v"
			checkIssue(t, contract.ValidateContainerConfig(cfg), "labels")
			checkIssue(t, contract.ValidateVolumeConfig(contract.VolumeConfig{
				Name: "v", Labels: map[string]string{tt.s: "v"}}), "labels")
			checkIssue(t, contract.ValidateNetworkConfig(contract.NetworkConfig{
				Name: "n", Labels: map[string]string{tt.s: "v"}}), "labels")
			checkIssue(t, contract.ValidateNetworkConfig(contract.NetworkConfig{
				Name: "n", Options: map[string]string{tt.s: "v"}}), "options")

			// Env names are ids too, in a config and in an exec.
			cfg = contract.NewContainerConfig("s1", "alpine:3.20")
			cfg.Env["K"+tt.s] = "v"
			checkIssue(t, contract.ValidateContainerConfig(cfg), "env")
			checkIssue(t, contract.ValidateExecOptions(contract.ExecOptions{
				Command: []string{"ls"}, Env: map[string]string{tt.s: "v"}}), "env")

			// Label values are free text: only NUL and bytes that are
			// not UTF-8 are refused.
			cfg = contract.NewContainerConfig("s1", "alpine:3.20")
			cfg.Labels["k"] = tt.s
			err := contract.ValidateContainerConfig(cfg)
			if strings.Contains(tt.s, "\x00") || !utf8.ValidString(tt.s) {
				checkIssue(t, err, "labels.k")
			} else if err != nil {
				t.Errorf("label value %q refused: %v", tt.s, err)
			}
		})
	}
}

// TestImageRefLength checks that the longest reference the parts allow
// (a 255-character name, a 128-character tag, a sha512 digest) passes, and
// that a longer one is refused by its length, before the reference
// grammar, whose issue it would otherwise get, runs on it.
func TestImageRefLength(t *testing.T) {
	name := "registry.example.com:5000/" + strings.Repeat("a", 255-len("registry.example.com:5000/"))
	longest := name + ":" + strings.Repeat("t", 128) + "@sha512:" + strings.Repeat("0", 128)
	if len(longest) != contract.MaxImageRefLen {
		t.Fatalf("longest reference has %d bytes, MaxImageRefLen is %d", len(longest), contract.MaxImageRefLen)
	}
	if !contract.ValidImageRef(longest) {
		t.Errorf("the longest valid reference is refused")
	}
	tooLong := "must be at most 520 bytes: a name of at most 255 characters, a tag of at most 128 and a sha512 digest"
	tests := []struct {
		name string
		give string
		want string // the issue at image
	}{
		{"name of 256 characters", name + "a", "repository name must be at most 255 characters"},
		{"one byte more than the longest", longest + "0", tooLong},
		{"a megabyte", strings.Repeat("a", 1<<20), tooLong},
		{"a megabyte the grammar is slowest on", strings.Repeat("a-", 1<<19) + "b", tooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if contract.ValidImageRef(tt.give) {
				t.Errorf("ValidImageRef accepts it")
			}
			cfg := contract.NewContainerConfig("s1", tt.give)
			want := []contract.Issue{{Path: "image", Message: tt.want}}
			if got := issuesOf(t, contract.ValidateContainerConfig(cfg)); !reflect.DeepEqual(got, want) {
				t.Errorf("issues %q, want %q", got, want)
			}
		})
	}
}

// TestIssueTextQuotesInput checks every place where a string of the input
// becomes part of an issue, as a map key in the path or a value in the
// message: one that could forge the error text (a newline, NUL, escape,
// bidi override, invalid UTF-8) or blow it up (a megabyte) stands quoted
// and cut, and the issue is where the table says.
func TestIssueTextQuotesInput(t *testing.T) {
	forged := "A\n2025 INFO all good\x00"
	huge := "A=" + strings.Repeat("x", 1<<20)
	givens := []struct{ name, s string }{{"forged line", forged}, {"megabyte", huge}}
	for _, tt := range unprintable {
		givens = append(givens, struct{ name, s string }{tt.name, "A=" + tt.s})
	}
	config := func(f func(*contract.ContainerConfig)) error {
		cfg := contract.NewContainerConfig("s1", "alpine:3.20")
		f(&cfg)
		return contract.ValidateContainerConfig(cfg)
	}
	for _, g := range givens {
		tests := []struct {
			name string
			err  error
			want string // the issue's path
		}{
			{"env name", config(func(c *contract.ContainerConfig) { c.Env[g.s] = "v" }), "env"},
			{"exec env name", contract.ValidateExecOptions(contract.ExecOptions{
				Command: []string{"ls"}, Env: map[string]string{g.s: "v"}}), "env"},
			{"label key with a bad value", config(func(c *contract.ContainerConfig) { c.Labels[g.s] = "\x00" }), "labels"},
			{"mount type", config(func(c *contract.ContainerConfig) {
				c.Volumes = []contract.VolumeMount{{Source: "data", Target: "/data", Type: contract.MountType(g.s)}}
			}), "volumes.0.type"},
			{"capability", contract.ValidateSecurityOptions(contract.SecurityOptions{
				Capabilities: contract.Capabilities{Add: []string{g.s}}}), "capabilities.add.0"},
		}
		for _, tt := range tests {
			t.Run(g.name+"/"+tt.name, func(t *testing.T) {
				checkIssue(t, tt.err, tt.want)
				if tt.err == nil {
					return
				}
				if msg := tt.err.Error(); strings.Contains(msg, g.s) || len(msg) > 512 {
					t.Errorf("error text shows the input as it is: %.200q", msg)
				}
			})
		}
	}
}

// TestValidateRefusesInvalidUTF8 checks that every string the engine
// receives in JSON is refused when it is not UTF-8, which JSON cannot
// carry: encoding/json would send U+FFFD in its place.
func TestValidateRefusesInvalidUTF8(t *testing.T) {
	const bad = "caf\xe9" // Latin-1: no NUL, not UTF-8
	config := func(f func(*contract.ContainerConfig)) error {
		cfg := contract.NewContainerConfig("s1", "alpine:3.20")
		f(&cfg)
		return contract.ValidateContainerConfig(cfg)
	}
	exec := func(f func(*contract.ExecOptions)) error {
		opts := contract.ExecOptions{Command: []string{"ls"}}
		f(&opts)
		return contract.ValidateExecOptions(opts)
	}
	tests := []struct {
		name string
		err  error
		want string // the issue's path
	}{
		{"command argument", config(func(c *contract.ContainerConfig) { c.Command = []string{"echo", bad} }), "command.1"},
		{"env value", config(func(c *contract.ContainerConfig) { c.Env["PASS"] = bad }), "env.PASS"},
		{"env name", config(func(c *contract.ContainerConfig) { c.Env[bad] = "x" }), "env"},
		{"label value", config(func(c *contract.ContainerConfig) { c.Labels["team"] = bad }), "labels.team"},
		{"label key", config(func(c *contract.ContainerConfig) { c.Labels[bad] = "x" }), "labels"},
		{"bind source", config(func(c *contract.ContainerConfig) {
			c.Volumes = []contract.VolumeMount{{Source: "/srv/" + bad, Target: "/data"}}
		}), "volumes.0.source"},
		{"volume source", config(func(c *contract.ContainerConfig) {
			c.Volumes = []contract.VolumeMount{{Source: bad, Target: "/data", Type: contract.MountVolume}}
		}), "volumes.0.source"},
		{"mount target", config(func(c *contract.ContainerConfig) {
			c.Volumes = []contract.VolumeMount{{Source: "data", Target: "/" + bad}}
		}), "volumes.0.target"},
		{"session id", config(func(c *contract.ContainerConfig) { c.SessionID = bad }), "sessionId"},
		{"image", config(func(c *contract.ContainerConfig) { c.Image = bad }), "image"},
		{"network", config(func(c *contract.ContainerConfig) { c.Network = bad }), "network"},
		{"user", config(func(c *contract.ContainerConfig) { c.Security.User = bad }), "security.user"},
		{"exec argument", exec(func(o *contract.ExecOptions) { o.Command = []string{bad} }), "command.0"},
		{"exec env value", exec(func(o *contract.ExecOptions) { o.Env = map[string]string{"A": bad} }), "env.A"},
		{"exec working dir", exec(func(o *contract.ExecOptions) { o.WorkingDir = "/" + bad }), "workingDir"},
		{"copy path", contract.ValidateContainerPath("/data/" + bad), "path"},
		{"volume label", contract.ValidateVolumeConfig(contract.VolumeConfig{
			Name: "v", Labels: map[string]string{"a": bad}}), "labels.a"},
		{"network option", contract.ValidateNetworkConfig(contract.NetworkConfig{
			Name: "n", Options: map[string]string{"a": bad}}), "options.a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkIssue(t, tt.err, tt.want)
		})
	}
}

// TestValidConfigSurvivesJSON checks that a config that passes validation
// reaches the other side of its JSON form unchanged, whatever string stands
// in any of its fields: what was validated is what the engine gets.
func TestValidConfigSurvivesJSON(t *testing.T) {
	fields := []struct {
		name string
		set  func(*contract.ContainerConfig, string)
	}{
		{"command", func(c *contract.ContainerConfig, s string) { c.Command = []string{"echo", s} }},
		{"env name", func(c *contract.ContainerConfig, s string) { c.Env["K"+s] = "v" }},
		{"env value", func(c *contract.ContainerConfig, s string) { c.Env["K"] = s }},
		{"label key", func(c *contract.ContainerConfig, s string) { c.Labels["k"+s] = "v" }},
		{"label value", func(c *contract.ContainerConfig, s string) { c.Labels["k"] = s }},
		{"bind source", func(c *contract.ContainerConfig, s string) {
			c.Volumes = []contract.VolumeMount{{Source: "/srv/" + s, Target: "/data"}}
		}},
		{"mount target", func(c *contract.ContainerConfig, s string) {
			c.Volumes = []contract.VolumeMount{{Source: "data", Target: "/data/" + s}}
		}},
		{"session id", func(c *contract.ContainerConfig, s string) { c.SessionID = "s" + s }},
	}
	givens := []string{"plain", "café", "名前", "\ufffd", "caf\xe9", "\xff", "a\xe2\x80", "\xed\xa0\x80"}
	for _, tt := range unprintable {
		givens = append(givens, tt.s)
	}
	for _, f := range fields {
		for _, s := range givens {
			cfg := contract.NewContainerConfig("s1", "alpine:3.20")
			f.set(&cfg, s)
			if contract.ValidateContainerConfig(cfg) != nil {
				continue
			}
			data, err := json.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			back, err := contract.DecodeContainerConfig(data)
			if err != nil || !reflect.DeepEqual(back, cfg) {
				t.Errorf("%s %q: valid config changed through JSON:\n got %+v, %v\nwant %+v", f.name, s, back, err, cfg)
			}
		}
	}
}

func TestValidateAcceptsPrintableIDs(t *testing.T) {
	for _, id := range []string{"session-1", "a b", "名前", "café", strings.Repeat("x", 128)} {
		cfg := contract.NewContainerConfig(id, "alpine:3.20")
		cfg.Labels[id] = "v"
		if err := contract.ValidateContainerConfig(cfg); err != nil {
			t.Errorf("ValidateContainerConfig with id %q: %v", id, err)
		}
	}
	cfg := contract.NewContainerConfig(strings.Repeat("x", 129), "alpine:3.20")
	checkIssue(t, contract.ValidateContainerConfig(cfg), "sessionId")
}
