package middleware_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/middleware"
)

func secureConfig() contract.ContainerConfig {
	return contract.NewContainerConfig("s1", "alpine:3.20")
}

func bind(src string, readOnly bool) contract.VolumeMount {
	return contract.VolumeMount{Source: src, Target: "/mnt", ReadOnly: readOnly, Type: contract.MountBind}
}

// issuePaths returns the paths of the issues in err, which must be a
// CONFIGURATION error with a *contract.ValidationError, or nil for nil.
func issuePaths(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	if !errors.Is(err, contract.ErrConfiguration) {
		t.Fatalf("error %v is not CONFIGURATION", err)
	}
	var ve *contract.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v holds no *ValidationError", err)
	}
	var paths []string
	for _, is := range ve.Issues {
		if is.Message == "" {
			t.Errorf("issue at %q has no message", is.Path)
		}
		paths = append(paths, is.Path)
	}
	return paths
}

func TestCheckContainerConfigDefaultsPass(t *testing.T) {
	if err := middleware.CheckContainerConfig(secureConfig()); err != nil {
		t.Fatalf("contract.NewContainerConfig refused by the default policy: %v", err)
	}
	cfg := secureConfig()
	cfg.Security = contract.NewSecurityOptions(contract.AddCapabilities("NET_BIND_SERVICE", "cap_chown", "SETFCAP"))
	cfg.Volumes = []contract.VolumeMount{
		{Source: "data", Target: "/data"},
		bind("/home/app/cache", false),
		bind("/srv/www", true),
		bind("/usr/share/zoneinfo", true),
		bind("/varnish", false), // not /var
		bind("/etcd-data", false),
		bind("/runner", false),
	}
	cfg.Network = "backend"
	if err := middleware.CheckContainerConfig(cfg); err != nil {
		t.Fatalf("safe config refused: %v", err)
	}
}

func TestCheckContainerConfigRules(t *testing.T) {
	tests := []struct {
		name string
		give func(*contract.ContainerConfig)
		opts []middleware.ValidateOption
		want []string // issue paths; nil when the config passes
	}{
		// Engine sockets.
		{name: "docker socket", give: mount(bind("/var/run/docker.sock", true)), want: []string{"volumes.0.source"}},
		{name: "docker socket in /run", give: mount(bind("/run/docker.sock", false)), want: []string{"volumes.0.source"}},
		{name: "unclean socket path", give: mount(bind("/var/run/../run/docker.sock", true)), want: []string{"volumes.0.source", "volumes.0.source"}},
		{name: "containerd socket", give: mount(bind("/run/containerd/containerd.sock", true)), want: []string{"volumes.0.source"}},
		{name: "rootless docker socket", give: mount(bind("/home/u/.docker/run/docker.sock", true)), want: []string{"volumes.0.source"}},
		{name: "engine state in another case", give: mount(bind("/VAR/LIB/DOCKER", true)), want: []string{"volumes.0.source"}},
		{name: "macOS socket in another case", give: mount(bind("/Users/bob/.Docker/run/docker.sock", true)), want: []string{"volumes.0.source"}},
		{name: "host configuration in another case", give: mount(bind("/Etc", true)), want: []string{"volumes.0.source"}},
		{name: "beneath host programs in another case, writable", give: mount(bind("/USR/local", false)), want: []string{"volumes.0.source"}},
		{name: "podman socket", give: mount(bind("/run/user/1000/podman/podman.sock", true)), want: []string{"volumes.0.source"}},
		{name: "any socket in /var/run", give: mount(bind("/var/run/some.sock", true)), want: []string{"volumes.0.source"}},
		{name: "socket directory", give: mount(bind("/var/run", true)), want: []string{"volumes.0.source"}},
		{name: "run", give: mount(bind("/run", true)), want: []string{"volumes.0.source"}},
		{name: "var, parent of var/run", give: mount(bind("/var", true)), want: []string{"volumes.0.source"}},
		{name: "var/lib, parent of docker state", give: mount(bind("/var/lib", true)), want: []string{"volumes.0.source"}},
		{name: "socket allowed deliberately", give: mount(bind("/var/run/docker.sock", false)),
			opts: []middleware.ValidateOption{middleware.AllowBindMounts("/var/run/docker.sock")}},
		{name: "socket allowed by a parent prefix", give: mount(bind("/run/docker.sock", false)),
			opts: []middleware.ValidateOption{middleware.AllowBindMounts("/run/")}},
		{name: "socket not allowed by a sibling prefix", give: mount(bind("/run/docker.sock", false)),
			opts: []middleware.ValidateOption{middleware.AllowBindMounts("/run/docker"), middleware.AllowBindMounts("relative")},
			want: []string{"volumes.0.source"}},

		// Host system paths.
		{name: "root", give: mount(bind("/", true)), want: []string{"volumes.0.source"}},
		{name: "etc", give: mount(bind("/etc", true)), want: []string{"volumes.0.source"}},
		{name: "beneath etc", give: mount(bind("/etc/shadow", true)), want: []string{"volumes.0.source"}},
		{name: "beneath etc allowed", give: mount(bind("/etc/ssl/certs", true)),
			opts: []middleware.ValidateOption{middleware.AllowBindMounts("/etc/ssl/certs")}},
		{name: "allowed prefix does not cover escape", give: mount(bind("/etc/ssl/certs/../../shadow", true)),
			opts: []middleware.ValidateOption{middleware.AllowBindMounts("/etc/ssl/certs")},
			want: []string{"volumes.0.source", "volumes.0.source"}},
		{name: "proc", give: mount(bind("/proc", true)), want: []string{"volumes.0.source"}},
		{name: "beneath proc", give: mount(bind("/proc/sys/kernel", true)), want: []string{"volumes.0.source"}},
		{name: "beneath sys", give: mount(bind("/sys/fs/cgroup", true)), want: []string{"volumes.0.source"}},
		{name: "beneath dev", give: mount(bind("/dev/mem", true)), want: []string{"volumes.0.source"}},
		{name: "beneath boot", give: mount(bind("/boot/efi", true)), want: []string{"volumes.0.source"}},
		{name: "root home", give: mount(bind("/root/.ssh", true)), want: []string{"volumes.0.source"}},
		{name: "usr", give: mount(bind("/usr", true)), want: []string{"volumes.0.source"}},
		{name: "beneath usr writable", give: mount(bind("/usr/local/bin", false)), want: []string{"volumes.0.source"}},
		{name: "beneath usr read-only", give: mount(bind("/usr/share/zoneinfo", true))},
		{name: "lib", give: mount(bind("/lib", true)), want: []string{"volumes.0.source"}},
		{name: "lib64", give: mount(bind("/lib64", true)), want: []string{"volumes.0.source"}},
		{name: "bin", give: mount(bind("/bin", true)), want: []string{"volumes.0.source"}},
		{name: "beneath sbin writable", give: mount(bind("/sbin/init", false)), want: []string{"volumes.0.source"}},
		{name: "docker state", give: mount(bind("/var/lib/docker", true)), want: []string{"volumes.0.source"}},
		{name: "beneath docker state", give: mount(bind("/var/lib/docker/volumes/x/_data", true)), want: []string{"volumes.0.source"}},
		{name: "beside docker state", give: mount(bind("/var/lib/postgresql", false))},
		{name: "implicit bind type", give: mount(contract.VolumeMount{Source: "/etc", Target: "/host-etc"}), want: []string{"volumes.0.source"}},
		{name: "named volume called etc", give: mount(contract.VolumeMount{Source: "etc", Target: "/etc-data"})},
		{name: "second mount reported at its index", give: mount(bind("/srv", true), bind("/proc", true)), want: []string{"volumes.1.source"}},
		{name: "everything allowed deliberately", give: mount(bind("/", false)),
			opts: []middleware.ValidateOption{middleware.AllowBindMounts("/")}},

		// Capabilities.
		{name: "add SYS_ADMIN", give: addCaps("SYS_ADMIN"), want: []string{"security.capabilities.add.0"}},
		{name: "add cap_sys_admin", give: addCaps("cap_sys_admin"), want: []string{"security.capabilities.add.0"}},
		{name: "add ALL", give: addCaps("ALL"), want: []string{"security.capabilities.add.0"}},
		{name: "add several", give: addCaps("CHOWN", "NET_ADMIN", "KILL", "SYS_PTRACE"),
			want: []string{"security.capabilities.add.1", "security.capabilities.add.3"}},
		{name: "add each dangerous one", give: addCaps("AUDIT_CONTROL", "BPF", "DAC_READ_SEARCH", "MAC_ADMIN", "MAC_OVERRIDE", "NET_RAW",
			"PERFMON", "SYS_BOOT", "SYS_MODULE", "SYS_RAWIO", "SYS_TIME", "SYSLOG"),
			want: []string{"security.capabilities.add.0", "security.capabilities.add.1", "security.capabilities.add.2",
				"security.capabilities.add.3", "security.capabilities.add.4", "security.capabilities.add.5",
				"security.capabilities.add.6", "security.capabilities.add.7", "security.capabilities.add.8",
				"security.capabilities.add.9", "security.capabilities.add.10", "security.capabilities.add.11"}},
		{name: "add harmless ones", give: addCaps("NET_BIND_SERVICE", "CHOWN", "SETUID", "SETGID", "KILL", "SETFCAP")},
		{name: "add NET_RAW allowed", give: addCaps("NET_RAW", "SYS_TIME"),
			opts: []middleware.ValidateOption{middleware.AllowCapabilities("cap_net_raw")},
			want: []string{"security.capabilities.add.1"}},
		{name: "allow ALL allows any", give: addCaps("SYS_ADMIN", "ALL"),
			opts: []middleware.ValidateOption{middleware.AllowCapabilities("ALL")}},
		{name: "unknown capability is a schema issue", give: addCaps("FLY"), want: []string{"security.capabilities.add.0"}},
		{name: "drop without ALL", give: func(c *contract.ContainerConfig) { c.Security.Capabilities.Drop = []string{"NET_RAW"} },
			want: []string{"security.capabilities.drop"}},
		{name: "drop all in lower case", give: func(c *contract.ContainerConfig) { c.Security.Capabilities.Drop = []string{"all"} }},
		{name: "engine capabilities allowed", give: func(c *contract.ContainerConfig) { c.Security.Capabilities.Drop = nil },
			opts: []middleware.ValidateOption{middleware.AllowEngineCapabilities()}},

		// User.
		{name: "empty user", give: user(""), want: []string{"security.user"}},
		{name: "root", give: user("root"), want: []string{"security.user"}},
		{name: "uid 0", give: user("0"), want: []string{"security.user"}},
		{name: "uid 00", give: user("00"), want: []string{"security.user"}},
		{name: "0:0", give: user("0:0"), want: []string{"security.user"}},
		{name: "0 with a group", give: user("0:1000"), want: []string{"security.user"}},
		{name: "root with a group", give: user("root:wheel"), want: []string{"security.user"}},
		{name: "named user", give: user("app")},
		{name: "uid with root group", give: user("1000:0")},
		{name: "rootish name", give: user("rooted")},
		{name: "root allowed", give: user("root"), opts: []middleware.ValidateOption{middleware.AllowRoot()}},
		{name: "empty allowed", give: user(""), opts: []middleware.ValidateOption{middleware.AllowRoot()}},

		// Privileges, root filesystem, resources.
		{name: "new privileges", give: func(c *contract.ContainerConfig) { c.Security.NoNewPrivileges = false },
			want: []string{"security.noNewPrivileges"}},
		{name: "new privileges allowed", give: func(c *contract.ContainerConfig) { c.Security.NoNewPrivileges = false },
			opts: []middleware.ValidateOption{middleware.AllowNewPrivileges()}},
		{name: "writable rootfs", give: func(c *contract.ContainerConfig) { c.Security.ReadOnly = false },
			want: []string{"security.readOnly"}},
		{name: "writable rootfs allowed", give: func(c *contract.ContainerConfig) { c.Security.ReadOnly = false },
			opts: []middleware.ValidateOption{middleware.AllowWritableRootFS()}},
		{name: "unlimited cpu", give: func(c *contract.ContainerConfig) { c.Resources.CPU = 0 },
			want: []string{"resources.cpu"}},
		{name: "unlimited cpu allowed", give: func(c *contract.ContainerConfig) { c.Resources.CPU = 0 },
			opts: []middleware.ValidateOption{middleware.AllowUnlimitedCPU()}},

		// Network.
		{name: "host network", give: network("host"), want: []string{"network"}},
		{name: "container network", give: network("container:abc123"), want: []string{"network", "network"}},
		{name: "none network", give: network("none")},
		{name: "hostile name", give: network("hostnet")},

		// Zero security options: every default rule at once.
		{name: "zero security options", give: func(c *contract.ContainerConfig) { c.Security = contract.SecurityOptions{} },
			want: []string{"security.capabilities.drop", "security.user", "security.noNewPrivileges", "security.readOnly"}},

		// Own rules.
		{name: "own rule", give: func(c *contract.ContainerConfig) { c.Labels["team"] = "" },
			opts: []middleware.ValidateOption{nil, middleware.WithPolicy(nil), middleware.WithPolicy(func(c contract.ContainerConfig) []contract.Issue {
				if c.Labels["team"] == "" {
					return []contract.Issue{{Path: "labels.team", Message: "must name the owning team"}}
				}
				return nil
			})},
			want: []string{"labels.team"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := secureConfig()
			tt.give(&cfg)
			err := middleware.CheckContainerConfig(cfg, tt.opts...)
			if got := issuePaths(t, err); !slices.Equal(got, tt.want) {
				t.Errorf("issues at %q, want %q\nerror: %v", got, tt.want, err)
			}
		})
	}
}

func mount(ms ...contract.VolumeMount) func(*contract.ContainerConfig) {
	return func(c *contract.ContainerConfig) { c.Volumes = ms }
}

func addCaps(caps ...string) func(*contract.ContainerConfig) {
	return func(c *contract.ContainerConfig) { c.Security.Capabilities.Add = caps }
}

func user(u string) func(*contract.ContainerConfig) {
	return func(c *contract.ContainerConfig) { c.Security.User = u }
}

func network(n string) func(*contract.ContainerConfig) {
	return func(c *contract.ContainerConfig) { c.Network = n }
}

func TestCheckContainerConfigReportsSchemaAndPolicyTogether(t *testing.T) {
	cfg := secureConfig()
	cfg.Resources.Memory = 0
	cfg.Security.Capabilities.Add = []string{"SYS_ADMIN"}
	err := middleware.CheckContainerConfig(cfg)
	want := []string{"resources.memory", "security.capabilities.add.0"}
	if got := issuePaths(t, err); !slices.Equal(got, want) {
		t.Errorf("issues at %q, want %q", got, want)
	}
	var de *contract.DriverError
	if !errors.As(err, &de) || de.Op != contract.OpCreateContainer || de.Retryable {
		t.Errorf("error = %#v, want a non-retryable CreateContainer error", de)
	}
	if !strings.Contains(err.Error(), "SYS_ADMIN") {
		t.Errorf("error %q does not name the capability", err)
	}
}

func TestValidateMiddleware(t *testing.T) {
	ctx := context.Background()
	badContainer := secureConfig()
	badContainer.Volumes = []contract.VolumeMount{bind("/var/run/docker.sock", false)}

	tests := []struct {
		name     string
		call     func(d contract.ContainerDriver) error
		wantOp   contract.Op // of the error; "" when the call passes
		wantPath string
	}{
		{"container refused", func(d contract.ContainerDriver) error {
			_, err := d.CreateContainer(ctx, badContainer)
			return err
		}, contract.OpCreateContainer, "volumes.0.source"},
		{"container passes", func(d contract.ContainerDriver) error {
			_, err := d.CreateContainer(ctx, secureConfig())
			return err
		}, "", ""},
		{"volume refused", func(d contract.ContainerDriver) error {
			_, err := d.CreateVolume(ctx, contract.VolumeConfig{Name: "../etc"})
			return err
		}, contract.OpCreateVolume, "name"},
		{"volume passes", func(d contract.ContainerDriver) error {
			_, err := d.CreateVolume(ctx, contract.VolumeConfig{Name: "data"})
			return err
		}, "", ""},
		{"network refused", func(d contract.ContainerDriver) error {
			_, err := d.CreateNetwork(ctx, contract.NetworkConfig{Name: "", Options: map[string]string{"": "x"}})
			return err
		}, contract.OpCreateNetwork, "name"},
		{"network passes", func(d contract.ContainerDriver) error {
			_, err := d.CreateNetwork(ctx, contract.NetworkConfig{Name: "backend"})
			return err
		}, "", ""},
		{"other ops pass untouched", func(d contract.ContainerDriver) error {
			return d.StartContainer(ctx, "")
		}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := newRecorder()
			d := middleware.Validate()(base)
			err := tt.call(d)
			if tt.wantOp == "" {
				if err != nil {
					t.Fatalf("error = %v, want none", err)
				}
				if base.op == "" {
					t.Error("the call did not reach the next driver")
				}
				return
			}
			paths := issuePaths(t, err)
			if len(paths) == 0 || paths[0] != tt.wantPath {
				t.Errorf("issues at %q, want %q first", paths, tt.wantPath)
			}
			var de *contract.DriverError
			if !errors.As(err, &de) || de.Op != tt.wantOp {
				t.Errorf("error op = %v, want %s", de, tt.wantOp)
			}
			if base.op != "" {
				t.Errorf("invalid input reached the next driver (%s)", base.op)
			}
		})
	}
}

func TestValidateKeepsLogStreamer(t *testing.T) {
	if _, ok := middleware.Validate()(streamRecorder{newRecorder()}).(contract.LogStreamer); !ok {
		t.Error("Validate dropped LogStreamer")
	}
}

func TestValidateAllocatesNothingOnOtherOps(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	ctx := context.Background()
	d := middleware.Validate()(nop{})
	if n := testing.AllocsPerRun(100, func() { d.StartContainer(ctx, "c1") }); n != 0 {
		t.Errorf("StartContainer through Validate: %v allocations, want 0", n)
	}
}
