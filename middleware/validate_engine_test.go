package middleware_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/memdriver"
	"github.com/resilientdriver/resilient/middleware"
)

// The reasons an engine location refusal gives, by kind of location.
var (
	socketReasons = []string{"CIS Docker Benchmark 5.31", "OWASP Docker Security Cheat Sheet rule #1", "connect()"}
	stateReasons  = []string{"control of every container", "CIS Docker Benchmark 5.5"}
)

// createThroughValidate creates a container with the bind mount mounts
// through Validate(opts...) around a fresh memdriver, and returns the error
// and how many containers reached the driver.
func createThroughValidate(t *testing.T, mounts []contract.VolumeMount, opts ...middleware.ValidateOption) (error, int) {
	t.Helper()
	ctx := context.Background()
	base := memdriver.New()
	cfg := secureConfig()
	cfg.Volumes = mounts
	_, err := middleware.Validate(opts...)(base).CreateContainer(ctx, cfg)
	list, lerr := base.ListContainers(ctx, contract.ContainerFilter{})
	if lerr != nil {
		t.Fatalf("ListContainers: %v", lerr)
	}
	return err, len(list)
}

// refusedIssue checks that err refuses CreateContainer with exactly one
// issue, at path, and returns its message.
func refusedIssue(t *testing.T, err error, path string) string {
	t.Helper()
	if !errors.Is(err, contract.ErrConfiguration) {
		t.Fatalf("error = %v, want CONFIGURATION", err)
	}
	var de *contract.DriverError
	if !errors.As(err, &de) || de.Op != contract.OpCreateContainer || de.Retryable {
		t.Errorf("error = %#v, want a non-retryable CreateContainer error", de)
	}
	var ve *contract.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v holds no *contract.ValidationError", err)
	}
	if len(ve.Issues) != 1 || ve.Issues[0].Path != path {
		t.Fatalf("issues = %+v, want one at %q", ve.Issues, path)
	}
	return ve.Issues[0].Message
}

func TestValidateRefusesEngineLocations(t *testing.T) {
	tests := []struct {
		name   string
		src    string
		socket bool     // the location is or holds an engine socket
		want   []string // in the message: the location and what it is
	}{
		// Docker Desktop.
		{"Docker Desktop for Linux socket", "/home/alice/.docker/desktop/docker.sock", true, []string{"/home/alice/.docker,", "Docker Desktop"}},
		{"Docker Desktop for Linux socket folder", "/home/alice/.docker/desktop", true, []string{"lies in /home/alice/.docker,"}},
		{"Docker Desktop for macOS socket", "/Users/bob/.docker/run/docker.sock", true, []string{"/Users/bob/.docker,", "run/docker.sock on macOS"}},
		{"Docker Desktop for macOS socket folder", "/Users/bob/.docker/run", true, []string{"/Users/bob/.docker,"}},
		{"Docker user folder", "/home/alice/.docker", true, []string{"is /home/alice/.docker,", "registry credentials"}},
		{"Docker Desktop for macOS data", "/Users/bob/Library/Containers/com.docker.docker/Data", true,
			[]string{"/Users/bob/Library/Containers/com.docker.docker,", "Docker Desktop for macOS"}},

		// VM-based engines.
		{"Colima socket", "/Users/bob/.colima/default/docker.sock", true, []string{"/Users/bob/.colima,", "Colima"}},
		{"Colima profile", "/Users/bob/.colima/default", true, []string{"lies in /Users/bob/.colima,"}},
		{"Colima folder on Linux", "/home/alice/.colima", true, []string{"is /home/alice/.colima,"}},
		{"Lima socket", "/Users/bob/.lima/default/sock/docker.sock", true, []string{"/Users/bob/.lima,", "Lima"}},
		{"Lima socket folder", "/Users/bob/.lima/docker/sock", true, []string{"/Users/bob/.lima,"}},
		{"Rancher Desktop socket", "/Users/bob/.rd/docker.sock", true, []string{"/Users/bob/.rd,", "Rancher Desktop"}},
		{"Rancher Desktop folder", "/home/alice/.rd", true, []string{"is /home/alice/.rd,"}},
		{"OrbStack socket", "/Users/bob/.orbstack/run/docker.sock", true, []string{"/Users/bob/.orbstack,", "OrbStack"}},
		{"OrbStack socket folder", "/Users/bob/.orbstack/run", true, []string{"/Users/bob/.orbstack,"}},

		// Rootful engines.
		{"Docker socket", "/var/run/docker.sock", true, []string{"is /var/run/docker.sock,", "Docker engine's socket"}},
		{"Docker socket in /run", "/run/docker.sock", true, []string{"is /run/docker.sock,"}},
		{"Docker runtime folder", "/run/docker", true, []string{"is /run/docker,"}},
		{"Docker data root", "/var/lib/docker", false, []string{"is /var/lib/docker,", "data root"}},
		{"Docker volume", "/var/lib/docker/volumes/x/_data", false, []string{"lies in /var/lib/docker,"}},
		{"containerd socket folder", "/run/containerd", true, []string{"is /run/containerd,", "containerd.sock"}},
		{"containerd socket", "/run/containerd/containerd.sock", true, []string{"lies in /run/containerd,"}},
		{"containerd state", "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs", false, []string{"lies in /var/lib/containerd,"}},
		{"Podman socket", "/run/podman/podman.sock", true, []string{"lies in /run/podman,", "Podman"}},
		{"Podman socket folder under /var/run", "/var/run/podman", true, []string{"is /var/run/podman,"}},
		{"Podman storage", "/var/lib/containers", false, []string{"is /var/lib/containers,", "Podman, CRI-O and Buildah"}},
		{"Podman volume", "/var/lib/containers/storage/volumes/x/_data", false, []string{"lies in /var/lib/containers,"}},
		{"Podman runtime state", "/run/containers/storage", false, []string{"lies in /run/containers,"}},
		{"CRI-O socket", "/var/run/crio/crio.sock", true, []string{"lies in /var/run/crio,", "CRI-O"}},
		{"CRI-O socket folder", "/run/crio", true, []string{"is /run/crio,"}},
		{"CRI-O state", "/var/lib/crio", false, []string{"is /var/lib/crio,"}},
		{"cri-dockerd socket", "/run/cri-dockerd.sock", true, []string{"is /run/cri-dockerd.sock,", "cri-dockerd"}},
		{"BuildKit socket", "/run/buildkit/buildkitd.sock", true, []string{"lies in /run/buildkit,", "BuildKit"}},
		{"BuildKit state", "/var/lib/buildkit", false, []string{"is /var/lib/buildkit,"}},
		{"snap Docker data root", "/var/snap/docker/common/var-lib-docker", true, []string{"lies in /var/snap/docker,", "snap Docker"}},
		{"snap Docker folder", "/var/snap/docker", true, []string{"is /var/snap/docker,"}},
		{"k3s containerd socket", "/run/k3s/containerd/containerd.sock", true, []string{"lies in /run/k3s,", "k3s"}},
		{"k3s state", "/var/lib/rancher/k3s", false, []string{"lies in /var/lib/rancher,", "k3s"}},
		{"k3s containerd storage", "/var/lib/rancher/k3s/agent/containerd", false, []string{"lies in /var/lib/rancher,"}},
		{"kubelet pods", "/var/lib/kubelet/pods", true, []string{"lies in /var/lib/kubelet,", "kubelet"}},

		// Rootless engines.
		{"rootless Docker socket", "/run/user/1000/docker.sock", true, []string{"is /run/user/1000/docker.sock,", "rootless Docker"}},
		{"rootless Docker socket under /var/run", "/var/run/user/1000/docker.sock", true, []string{"is /var/run/user/1000/docker.sock,"}},
		{"rootless Docker data root", "/home/alice/.local/share/docker", false, []string{"is /home/alice/.local/share/docker,", "rootless Docker"}},
		{"rootless Docker volume", "/home/alice/.local/share/docker/volumes/x/_data", false, []string{"lies in /home/alice/.local/share/docker,"}},
		{"rootless Podman socket", "/run/user/1000/podman/podman.sock", true, []string{"lies in /run/user/1000/podman,", "rootless Podman"}},
		{"rootless Podman socket folder", "/run/user/1000/podman", true, []string{"is /run/user/1000/podman,"}},
		{"rootless Podman runtime state", "/run/user/1000/containers", false, []string{"is /run/user/1000/containers,"}},
		{"rootless Podman storage", "/home/alice/.local/share/containers/storage", false,
			[]string{"lies in /home/alice/.local/share/containers,", "rootless Podman"}},
		{"rootless Podman storage on Fedora Atomic", "/var/home/alice/.local/share/containers", false, []string{"is /var/home/alice/.local/share/containers,"}},
		{"rootless containerd data root", "/home/alice/.local/share/containerd", false, []string{"is /home/alice/.local/share/containerd,"}},

		// Ancestors of the locations.
		{"root filesystem", "/", true, []string{"contains /run/docker.sock,"}},
		{"run", "/run", true, []string{"contains /run/docker.sock,"}},
		{"var run", "/var/run", true, []string{"contains /var/run/docker.sock,"}},
		{"var", "/var", true, []string{"contains /var/run/docker.sock,"}},
		{"var lib", "/var/lib", false, []string{"contains /var/lib/docker,"}},
		{"run user", "/run/user", true, []string{"contains /run/user/*/docker.sock,"}},
		{"a user's runtime folder", "/run/user/1000", true, []string{"contains /run/user/1000/docker.sock,"}},
		{"var snap", "/var/snap", true, []string{"contains /var/snap/docker,"}},
		{"home", "/home", true, []string{"contains /home/*/.docker,"}},
		{"a home", "/home/alice", true, []string{"contains /home/alice/.docker,"}},
		{"a macOS home", "/Users/bob", true, []string{"contains /Users/bob/.docker,"}},
		{"macOS homes", "/Users", true, []string{"contains /Users/*/.docker,"}},
		{"a macOS Library", "/Users/bob/Library", true, []string{"contains /Users/bob/Library/Containers/com.docker.docker,"}},
		{"a Fedora Atomic home", "/var/home/alice", true, []string{"contains /var/home/alice/.docker,"}},
		{"root's home", "/root", true, []string{"contains /root/.docker,"}},
		{"a home's .local", "/home/alice/.local", false, []string{"contains /home/alice/.local/share/docker,"}},
		{"a home's .local/share", "/home/alice/.local/share", false, []string{"contains /home/alice/.local/share/docker,"}},

		// Engine folders at any depth: a home can sit anywhere.
		{"Colima folder anywhere", "/srv/x/.colima", true, []string{"is /srv/x/.colima,", "Colima"}},
		{"Colima profile anywhere", "/srv/u/bob/.colima/default", true, []string{"lies in /srv/u/bob/.colima,"}},
		{"Docker socket anywhere", "/data/homes/carol/.docker/run/docker.sock", true, []string{"lies in /data/homes/carol/.docker,"}},
		{"Lima socket folder anywhere", "/opt/ci/.lima/ci/sock", true, []string{"lies in /opt/ci/.lima,"}},
		{"Rancher Desktop folder anywhere", "/srv/x/.rd", true, []string{"is /srv/x/.rd,"}},
		{"OrbStack folder anywhere", "/srv/x/.orbstack", true, []string{"is /srv/x/.orbstack,"}},
		{"Docker Desktop for macOS folder anywhere", "/srv/u/bob/Library/Containers/com.docker.docker", true,
			[]string{"is /srv/u/bob/Library/Containers/com.docker.docker,"}},
		{"rootless Podman storage anywhere", "/mnt/disk/.local/share/containers/storage", false, []string{"lies in /mnt/disk/.local/share/containers,"}},
		{"rootless Docker data root anywhere", "/srv/x/.local/share/docker", false, []string{"is /srv/x/.local/share/docker,"}},
		{"Podman socket by name", "/srv/x/podman.sock", true, []string{"is /srv/x/podman.sock,", "a Podman socket"}},
		{"BuildKit socket by name", "/tmp/buildkitd.sock", true, []string{"is /tmp/buildkitd.sock,"}},
		{"dockershim socket by name", "/var/lib/dockershim/dockershim.sock", true, []string{"is /var/lib/dockershim/dockershim.sock,"}},
	}
	for _, tt := range tests {
		for _, readOnly := range []bool{false, true} {
			name := tt.name + map[bool]string{false: " writable", true: " read-only"}[readOnly]
			t.Run(name, func(t *testing.T) {
				err, created := createThroughValidate(t, []contract.VolumeMount{bind("/srv/data", readOnly), {Source: "data", Target: "/data"}, bind(tt.src, readOnly)})
				msg := refusedIssue(t, err, "volumes.2.source")
				if created != 0 {
					t.Errorf("%d containers reached the driver, want none", created)
				}
				want := append([]string{`"` + tt.src + `"`, "AllowBindMounts"}, tt.want...)
				if tt.socket {
					want = append(want, socketReasons...)
				} else {
					want = append(want, stateReasons...)
				}
				for _, w := range want {
					if !strings.Contains(msg, w) {
						t.Errorf("message %q does not contain %q", msg, w)
					}
				}
			})
		}
	}
}

func TestValidateAllowsPathsBesideEngineLocations(t *testing.T) {
	for _, src := range []string{
		"/home/alice/projects",
		"/home/alice/projects/app",
		"/home/alice/.config/app",
		"/home/alice/.local/bin",
		"/home/alice/docker",
		"/home/alice/.dockerignore",
		"/home/alice/.docker-cache",
		"/Users/bob/code",
		"/Users/bob/Library-backup",
		"/srv/data",
		"/srv/x/colima",
		"/srv/x/.local/share/docker-compose",
		"/srv/Library",
		"/opt/app",
		"/var/lib/dockerx",
		"/var/lib/containers-backup",
		"/var/lib/postgresql",
		"/var/snapshots",
		"/var/snap/lxd",
		"/homeless",
		"/tmp/docker.socket",
	} {
		for _, readOnly := range []bool{false, true} {
			t.Run(src+map[bool]string{false: " writable", true: " read-only"}[readOnly], func(t *testing.T) {
				err, created := createThroughValidate(t, []contract.VolumeMount{bind(src, readOnly)})
				if err != nil {
					t.Fatalf("bind mount of %s refused: %v", src, err)
				}
				if created != 1 {
					t.Errorf("%d containers reached the driver, want 1", created)
				}
			})
		}
	}
}

func TestValidateAllowBindMountsCoversEngineLocations(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		allow []string
		want  bool // allowed
	}{
		{"the socket itself", "/home/alice/.colima/default/docker.sock", []string{"/home/alice/.colima/default/docker.sock"}, true},
		{"a folder above the socket", "/home/alice/.colima/default/docker.sock", []string{"/home/alice/.colima"}, true},
		{"a whole home", "/home/alice", []string{"/home/alice"}, true},
		{"a project's own .docker folder", "/srv/app/.docker", []string{"/srv/app"}, true},
		{"podman storage", "/var/lib/containers/storage", []string{"/var/lib/containers"}, true},
		{"a sibling stays refused", "/home/alice/.lima", []string{"/home/alice/.colima"}, false},
		{"an ancestor stays refused", "/home/alice", []string{"/home/alice/projects"}, false},
		{"a string prefix allows nothing", "/home/alice/.colima", []string{"/home/alice/.col"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err, created := createThroughValidate(t, []contract.VolumeMount{bind(tt.src, false)}, middleware.AllowBindMounts(tt.allow...))
			if tt.want {
				if err != nil || created != 1 {
					t.Fatalf("error = %v, %d containers created; want the mount allowed", err, created)
				}
				return
			}
			refusedIssue(t, err, "volumes.0.source")
			if created != 0 {
				t.Errorf("%d containers reached the driver, want none", created)
			}
		})
	}
}

// FuzzCheckContainerConfigBindSource checks that no bind source makes the
// policy panic, and that every refusal is a CONFIGURATION error at the
// mount's source.
func FuzzCheckContainerConfigBindSource(f *testing.F) {
	for _, s := range []string{"/", "/*", "/run/user/*", "/home/*/.docker", "/.docker", "/a/.local", "//", "/a/../b", "", "rel/.colima", "/home/alice/.local/share/containers/x"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, src string, readOnly bool) {
		cfg := secureConfig()
		cfg.Volumes = []contract.VolumeMount{{Source: src, Target: "/mnt", ReadOnly: readOnly, Type: contract.MountBind}}
		err := middleware.CheckContainerConfig(cfg)
		if err == nil {
			return
		}
		var ve *contract.ValidationError
		if !errors.Is(err, contract.ErrConfiguration) || !errors.As(err, &ve) {
			t.Fatalf("error %v is not a CONFIGURATION validation error", err)
		}
		for _, is := range ve.Issues {
			if is.Path != "volumes.0.source" || is.Message == "" {
				t.Errorf("issue %+v, want a message at volumes.0.source", is)
			}
		}
	})
}
