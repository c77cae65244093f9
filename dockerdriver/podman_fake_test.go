package dockerdriver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/resilientdriver/resilient/contract"
)

// podmanDefaultCaps is the set Podman 4.3's Docker-compatible inspect
// reports capabilities against (the OCI tools' default), without "CAP_".
var podmanDefaultCaps = []string{"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}

// podmanGrantCaps is what Podman grants a container that drops nothing
// (containers.conf's default_capabilities), with "CAP_".
var podmanGrantCaps = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"}

// podmanView is what the fake Podman reports for a create: the host
// config of its Docker-compatible inspect (Podman's spelling of what was
// sent), the container's mounts, and the capability sets of its own
// inspect. A test's lie changes it before it is reported.
type podmanView struct {
	host      map[string]any
	mounts    []map[string]any
	bounding  []string // nil is reported as null, as Podman does for an empty set
	effective []string
	// noBounding leaves the BoundingCaps field out of Podman's inspect.
	noBounding bool
	// libpodStatus, when set, is the status of Podman's own inspect.
	libpodStatus int
}

// newPodmanEngine is an echo engine that answers as Podman 4.3.1 does
// (measured against the real service): its /version names the "Podman
// Engine" component; inspect reports CapDrop as the default set's
// capabilities one by one, "no-new-privileges" without a value, tmpfs
// options with "rprivate,tmpcopyup" added and a writable tmpfs of its own
// at /tmp, /var/tmp and /run where none was asked on a read-only root,
// no HostConfig.Mounts but the container's Mounts; its own inspect has the
// bounding and effective capabilities.
func newPodmanEngine(t *testing.T, lie func(*podmanView)) *echoEngine {
	t.Helper()
	var mu sync.Mutex
	var view podmanView
	e := newEchoEngine(t, func(h map[string]any) {
		v := podmanSpelling(h)
		if lie != nil {
			lie(&v) // changes v.host, which is h, in place
		}
		mu.Lock()
		view = v
		mu.Unlock()
	})
	e.handle("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"Version": "4.3.1", "ApiVersion": "1.41",
			"Components": []map[string]any{{"Name": "Podman Engine", "Version": "4.3.1"}, {"Name": "Conmon", "Version": "2.1.6"}}})
	})
	// No volume exists: the driver makes those of the mounts, labelled.
	e.handle("POST /volumes/create", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Name   string
			Labels map[string]string
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body.Labels["io.resilientdriver.managed"] != "true" || body.Labels["io.resilientdriver.session"] != "podman" {
			t.Errorf("volume %s made with labels %v, want managed and session", body.Name, body.Labels)
		}
		writeJSON(w, 201, map[string]any{"Name": body.Name, "Driver": "local", "Labels": body.Labels})
	})
	route := "GET /containers/" + fakeID + "/json"
	compat := e.handler(route)
	e.handle(route, func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		compat(rec, r)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Errorf("echo inspect: %v", err)
		}
		mu.Lock()
		body["Mounts"] = view.mounts
		mu.Unlock()
		writeJSON(w, rec.Code, body)
	})
	e.handle("GET /v4.0.0/libpod/containers/"+fakeID+"/json", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if view.libpodStatus != 0 {
			writeJSON(w, view.libpodStatus, map[string]string{"message": "no such endpoint"})
			return
		}
		body := map[string]any{"Id": fakeID, "EffectiveCaps": view.effective, "BoundingCaps": view.bounding}
		if view.noBounding {
			delete(body, "BoundingCaps")
		}
		writeJSON(w, 200, body)
	})
	return e
}

// podmanSpelling turns the host config a create sent into what Podman
// reports for it.
func podmanSpelling(h map[string]any) podmanView {
	v := podmanView{host: h}
	strs := func(x any) []string {
		var out []string
		l, _ := x.([]any)
		for _, s := range l {
			out = append(out, s.(string))
		}
		return out
	}
	drop, add := strs(h["CapDrop"]), strs(h["CapAdd"])
	var bounding []string
	if !slices.Contains(drop, "ALL") {
		for _, c := range podmanGrantCaps {
			if !slices.Contains(drop, c) {
				bounding = append(bounding, c)
			}
		}
	}
	for _, c := range add {
		if !slices.Contains(bounding, c) {
			bounding = append(bounding, c)
		}
	}
	slices.Sort(bounding)
	v.bounding, v.effective = bounding, bounding
	reportedDrop, reportedAdd := []string{}, []string{}
	for _, c := range podmanDefaultCaps {
		if !slices.Contains(bounding, "CAP_"+c) {
			reportedDrop = append(reportedDrop, c)
		}
	}
	for _, c := range bounding {
		if !slices.Contains(podmanDefaultCaps, strings.TrimPrefix(c, "CAP_")) {
			reportedAdd = append(reportedAdd, strings.TrimPrefix(c, "CAP_"))
		}
	}
	h["CapDrop"], h["CapAdd"] = reportedDrop, reportedAdd
	var sec []string
	for _, o := range strs(h["SecurityOpt"]) {
		sec = append(sec, strings.TrimSuffix(o, "=true"))
	}
	h["SecurityOpt"] = sec
	tmpfs := map[string]string{}
	if m, ok := h["Tmpfs"].(map[string]any); ok {
		for k, o := range m {
			tmpfs[k] = o.(string) + ",rprivate,tmpcopyup"
		}
	}
	var binds []string
	if ms, ok := h["Mounts"].([]any); ok {
		for _, x := range ms {
			m := x.(map[string]any)
			ro, _ := m["ReadOnly"].(bool)
			v.mounts = append(v.mounts, map[string]any{"Type": m["Type"], "Name": m["Source"],
				"Destination": m["Target"], "RW": !ro, "Propagation": "rprivate"})
			mode := "rw"
			if ro {
				mode = "ro"
			}
			binds = append(binds, m["Source"].(string)+":"+m["Target"].(string)+":"+mode+",rprivate,nosuid,nodev,rbind")
		}
	}
	if ro, _ := h["ReadonlyRootfs"].(bool); ro {
		for _, dir := range []string{"/tmp", "/var/tmp", "/run"} {
			taken := slices.ContainsFunc(v.mounts, func(m map[string]any) bool { return m["Destination"] == dir })
			if _, ok := tmpfs[dir]; !ok && !taken {
				tmpfs[dir] = "rw,rprivate,nosuid,nodev,tmpcopyup"
			}
		}
	}
	h["Tmpfs"] = tmpfs
	delete(h, "Mounts")
	h["Binds"] = binds
	return v
}

// podmanConfigs are configs whose Podman-spelled answers the driver must
// accept: the secure defaults, an added capability, read-only and
// writable volumes, and a volume over /tmp.
func podmanConfigs() map[string]contract.ContainerConfig {
	base := smallConfig("podman")
	withCap := base
	withCap.Security.Capabilities.Add = []string{"NET_BIND_SERVICE"}
	withVolumes := base
	withVolumes.Volumes = []contract.VolumeMount{
		{Source: "data", Target: "/data", ReadOnly: true},
		{Source: "cache", Target: "/var/cache"},
	}
	overTmp := base
	overTmp.Volumes = []contract.VolumeMount{{Source: "scratch", Target: "/tmp"}}
	return map[string]contract.ContainerConfig{
		"defaults": base, "added capability": withCap, "volumes": withVolumes, "volume over /tmp": overTmp,
	}
}

// TestPodmanSpellingsAccepted: the same secure config is created on a
// Podman engine, which reports what it applied in its own spelling; the
// driver asks for read-only tmpfs where Podman would put writable ones of
// no size, and HealthCheck names Podman.
func TestPodmanSpellingsAccepted(t *testing.T) {
	t.Parallel()
	for name, cfg := range podmanConfigs() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newPodmanEngine(t, nil)
			d := fakeDriver(t, e.fakeDaemon)
			if _, err := d.CreateContainer(context.Background(), cfg); err != nil {
				t.Fatalf("CreateContainer on Podman: %v", err)
			}
			sent := e.sent()
			if len(sent) != 1 {
				t.Fatalf("%d creates sent", len(sent))
			}
			for _, dir := range []string{"/run", "/var/tmp"} {
				if got := sent[0].Tmpfs[dir]; !strings.HasPrefix(got, "ro,") {
					t.Errorf("tmpfs at %s sent as %q, want a read-only one", dir, got)
				}
			}
			if len(cfg.Volumes) > 0 && !e.called("POST /volumes/create") {
				t.Error("the volumes of the mounts were not made with the driver's labels")
			}
			if !e.called("GET /v4.0.0/libpod/containers/" + fakeID + "/json") {
				t.Error("the capabilities were not read from Podman's own inspect")
			}
			if removed := e.removals(); removed != 0 {
				t.Errorf("the container was removed %d times", removed)
			}
		})
	}
	t.Run("health", func(t *testing.T) {
		t.Parallel()
		e := newPodmanEngine(t, nil)
		e.handle("GET /containers/json", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, []any{}) })
		h, err := fakeDriver(t, e.fakeDaemon).HealthCheck(context.Background())
		if err != nil || h.Status != contract.Healthy || h.Version != "Podman 4.3.1" {
			t.Errorf("HealthCheck = %+v, %v; want healthy, version \"Podman 4.3.1\"", h, err)
		}
	})
}

// TestDockerGetsNoPodmanMounts: on Docker the driver sends the tmpfs at
// /tmp only, as before.
func TestDockerGetsNoPodmanMounts(t *testing.T) {
	t.Parallel()
	e := newEchoEngine(t, nil)
	if _, err := fakeDriver(t, e.fakeDaemon).CreateContainer(context.Background(), smallConfig("docker")); err != nil {
		t.Fatal(err)
	}
	if sent := e.sent(); len(sent) != 1 || len(sent[0].Tmpfs) != 1 || sent[0].Tmpfs["/tmp"] == "" {
		t.Errorf("tmpfs sent to Docker: %v", sent[0].Tmpfs)
	}
}

// TestPodmanFailsClosed: Podman-spelled answers that show a setting was
// not applied make the create fail and remove the container.
func TestPodmanFailsClosed(t *testing.T) {
	t.Parallel()
	setTmpfs := func(dir, opts string) func(*podmanView) {
		return func(v *podmanView) { v.host["Tmpfs"].(map[string]string)[dir] = opts }
	}
	for _, tt := range []struct {
		name string
		cfg  string // of podmanConfigs
		lie  func(*podmanView)
		want contract.Code
		says string
	}{
		// The Docker-compatible inspect still lists the whole default set
		// as dropped: only the bounding set shows the capability.
		{"a capability kept", "defaults", func(v *podmanView) {
			v.bounding = []string{"CAP_SYS_ADMIN"}
		}, contract.CodeResourceLimit, "dropped capabilities"},
		{"the default set kept", "defaults", func(v *podmanView) {
			v.bounding, v.effective = podmanGrantCaps, podmanGrantCaps
		}, contract.CodeResourceLimit, "dropped capabilities"},
		{"an effective capability outside the bounding set", "defaults", func(v *podmanView) {
			v.effective = []string{"CAP_NET_RAW"}
		}, contract.CodeResourceLimit, "effective capabilities"},
		{"added capability missing", "added capability", func(v *podmanView) {
			v.bounding, v.effective = nil, nil
		}, contract.CodeResourceLimit, "added capabilities"},
		{"capabilities not reported", "defaults", func(v *podmanView) {
			v.noBounding = true
		}, contract.CodeResourceLimit, "does not report the capabilities"},
		{"no Podman inspect", "defaults", func(v *podmanView) {
			v.libpodStatus = 404
		}, contract.CodeConfiguration, "podman inspect"},
		{"no new privileges dropped", "defaults", func(v *podmanView) {
			v.host["SecurityOpt"] = []string{}
		}, contract.CodeResourceLimit, "security options"},
		{"no new privileges false", "defaults", func(v *podmanView) {
			v.host["SecurityOpt"] = []string{"no-new-privileges=false"}
		}, contract.CodeResourceLimit, "security options"},
		{"seccomp unconfined", "defaults", func(v *podmanView) {
			v.host["SecurityOpt"] = []string{"no-new-privileges", "seccomp=unconfined"}
		}, contract.CodeResourceLimit, "security options"},
		{"/tmp without noexec", "defaults", setTmpfs("/tmp", "rw,nosuid,nodev,size=16m,mode=1777,rprivate,tmpcopyup"),
			contract.CodeResourceLimit, "/tmp (not noexec)"},
		{"/tmp exec after noexec", "defaults", setTmpfs("/tmp", "rw,nosuid,nodev,noexec,size=16m,mode=1777,rprivate,tmpcopyup,exec"),
			contract.CodeResourceLimit, "/tmp (not noexec)"},
		{"/tmp with suid", "defaults", setTmpfs("/tmp", "rw,suid,nodev,noexec,size=16m,mode=1777"),
			contract.CodeResourceLimit, "/tmp (not nosuid)"},
		{"/tmp larger", "defaults", setTmpfs("/tmp", "size=64m,rw,rprivate,nosuid,nodev,noexec,mode=1777,tmpcopyup"),
			contract.CodeResourceLimit, "disk limit"},
		{"/tmp size twice", "defaults", setTmpfs("/tmp", "rw,nosuid,nodev,noexec,size=16m,mode=1777,size=1g"),
			contract.CodeResourceLimit, "size given twice"},
		{"/tmp mode changed", "defaults", setTmpfs("/tmp", "rw,nosuid,nodev,noexec,size=16m,mode=0777"),
			contract.CodeResourceLimit, "mode=0777"},
		{"/tmp unknown option", "defaults", setTmpfs("/tmp", "rw,nosuid,nodev,noexec,size=16m,mode=1777,uid=0"),
			contract.CodeResourceLimit, "option uid=0"},
		{"/var/tmp writable", "defaults", setTmpfs("/var/tmp", "rw,rprivate,nosuid,nodev,tmpcopyup"),
			contract.CodeResourceLimit, "tmpfs at /var/tmp"},
		{"/run missing", "defaults", func(v *podmanView) { delete(v.host["Tmpfs"].(map[string]string), "/run") },
			contract.CodeResourceLimit, "tmpfs at /run (missing)"},
		{"writable tmpfs added", "defaults", setTmpfs("/dev/shm", "rw,nosuid,nodev"),
			contract.CodeResourceLimit, "writable tmpfs at /dev/shm"},
		{"read-only volume writable", "volumes", func(v *podmanView) { v.mounts[0]["RW"] = true },
			contract.CodeResourceLimit, "mounts"},
		{"volume missing", "volumes", func(v *podmanView) { v.mounts = v.mounts[:1] },
			contract.CodeResourceLimit, "mounts"},
		{"privileged", "defaults", func(v *podmanView) { v.host["Privileged"] = true },
			contract.CodeResourceLimit, "unprivileged"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newPodmanEngine(t, tt.lie)
			d := fakeDriver(t, e.fakeDaemon)
			_, err := d.CreateContainer(context.Background(), podmanConfigs()[tt.cfg])
			wantCode(t, tt.name, err, tt.want, false)
			if err != nil && !strings.Contains(err.Error(), tt.says) {
				t.Errorf("the error does not say %q: %v", tt.says, err)
			}
			if removed := e.removals(); removed != 1 {
				t.Errorf("removed %d times, want 1", removed)
			}
		})
	}
}

// TestDockerAddedTmpfsFailsClosed: on Docker too, a writable tmpfs the
// driver did not ask for is refused.
func TestDockerAddedTmpfsFailsClosed(t *testing.T) {
	t.Parallel()
	e := newEchoEngine(t, func(h map[string]any) {
		h["Tmpfs"].(map[string]any)["/var/tmp"] = "rw"
	})
	_, err := fakeDriver(t, e.fakeDaemon).CreateContainer(context.Background(), smallConfig("docker"))
	wantCode(t, "writable tmpfs added", err, contract.CodeResourceLimit, false)
	if !errors.Is(err, contract.ErrResourceLimit) || !strings.Contains(err.Error(), "/var/tmp") {
		t.Errorf("error = %v", err)
	}
}
