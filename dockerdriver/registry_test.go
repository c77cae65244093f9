package dockerdriver_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"

	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
)

// The local registries scripts/registry.sh starts: one open, one with
// htpasswd basic auth, both serving the workload image as
// resilient/workload:test. The daemon treats 127.0.0.0/8 registries as
// insecure, so both are plain HTTP.
const (
	openRegistry  = "127.0.0.1:5000"
	authRegistry  = "127.0.0.1:5001"
	registryRepo  = "resilient/workload"
	registryTag   = "test"
	registryUser  = "resilient"
	registryPass  = "resilient-test-password"
	wrongPassword = "wrong-Pa55word-must-not-leak"
)

func registryRef(host string) string { return host + "/" + registryRepo + ":" + registryTag }

// requireRegistries fails the test unless both registries answer and hold
// the image.
func requireRegistries(t *testing.T) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	check := func(host string, auth bool) error {
		req, err := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+registryRepo+"/manifests/"+registryTag, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
		if auth {
			// Without credentials the auth registry must refuse.
			resp, err := hc.Do(req.Clone(context.Background()))
			if err != nil {
				return fmt.Errorf("no registry answers at %s: %w", host, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				return fmt.Errorf("the registry at %s answers %s without credentials, want 401", host, resp.Status)
			}
			req.SetBasicAuth(registryUser, registryPass)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("no registry answers at %s: %w", host, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the registry at %s answers %s for %s:%s, want 200", host, resp.Status, registryRepo, registryTag)
		}
		return nil
	}
	for _, r := range []struct {
		host string
		auth bool
	}{{openRegistry, false}, {authRegistry, true}} {
		if err := check(r.host, r.auth); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%v\nCI must provide the local registries: scripts/test.sh runs scripts/registry.sh before the tests.", err)
			}
			t.Fatalf("%v\nThe registry tests pull from local registries: run scripts/registry.sh (after scripts/provision.sh; "+
				"as root on Debian it installs docker-registry, starts it on %s and %s and pushes the workload image).",
				err, openRegistry, authRegistry)
		}
	}
}

// removeImage removes ref from the engine, if it is there. The registry
// images share their ID with resilient-workload:latest, so this only
// removes the tag.
func removeImage(t *testing.T, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := docker.ImageRemove(ctx, ref, image.RemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		t.Fatalf("removing image %s: %v", ref, err)
	}
}

// imagePresent reports whether the engine has ref, and checks that it came
// from the registry of ref (it has a repo digest there).
func imagePresent(t *testing.T, ref string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	img, err := docker.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return false
	}
	if err != nil {
		t.Fatalf("inspecting image %s: %v", ref, err)
	}
	name := ref[:strings.LastIndexByte(ref, ':')] + "@sha256:"
	for _, d := range img.RepoDigests {
		if strings.HasPrefix(d, name) {
			return true
		}
	}
	t.Errorf("image %s is present but has no digest from its registry (repo digests %v): it was not pulled", ref, img.RepoDigests)
	return true
}

// registryImages removes the registry images before the test and checks
// when it ends that none is left (removing any it finds). It runs its
// cleanup after the containers' (registered later, run first).
func registryImages(t *testing.T, refs ...string) {
	t.Helper()
	for _, ref := range refs {
		removeImage(t, ref)
	}
	t.Cleanup(func() {
		for _, ref := range refs {
			removeImage(t, ref)
			if imagePresent(t, ref) {
				t.Errorf("image %s left behind", ref)
			}
		}
	})
}

func TestRegistryPullPolicies(t *testing.T) {
	requireRegistries(t)
	ref := registryRef(openRegistry)
	missing := openRegistry + "/" + registryRepo + ":no-such-tag"
	registryImages(t, ref, missing)
	sid := newSession(t)
	ctx := ctxFor(t)

	cfg := smallConfig(sid)
	cfg.Image = ref

	t.Run("never", func(t *testing.T) {
		d := newDriver(t, dockerdriver.WithPullPolicy(dockerdriver.PullNever))
		_, err := d.CreateContainer(ctx, cfg)
		wantCode(t, "PullNever, image missing", err, contract.CodeConfiguration, false)
		if imagePresent(t, ref) {
			t.Errorf("PullNever pulled %s", ref)
		}
	})

	t.Run("if-missing", func(t *testing.T) {
		d := newDriver(t, dockerdriver.WithPullPolicy(dockerdriver.PullIfMissing))
		start := time.Now()
		inst := create(t, ctx, d, cfg)
		t.Logf("create with pull took %v", time.Since(start))
		if inst.Image != ref {
			t.Errorf("Image = %q, want %q", inst.Image, ref)
		}
		if !imagePresent(t, ref) {
			t.Fatalf("image %s is not on the engine after a PullIfMissing create", ref)
		}
		removeQuietly(t, d, inst.ID)

		// Present now: PullNever uses it.
		dn := newDriver(t, dockerdriver.WithPullPolicy(dockerdriver.PullNever))
		inst = create(t, ctx, dn, cfg)
		removeQuietly(t, dn, inst.ID)
	})

	t.Run("always", func(t *testing.T) {
		removeImage(t, ref)
		d := newDriver(t, dockerdriver.WithPullPolicy(dockerdriver.PullAlways))
		inst := create(t, ctx, d, cfg)
		if !imagePresent(t, ref) {
			t.Fatalf("image %s is not on the engine after a PullAlways create", ref)
		}
		removeQuietly(t, d, inst.ID)
		// Present, pulled again: still works.
		inst = create(t, ctx, d, cfg)
		removeQuietly(t, d, inst.ID)

		// A tag the registry does not have.
		bad := cfg
		bad.Image = missing
		_, err := d.CreateContainer(ctx, bad)
		wantCode(t, "PullAlways, tag the registry lacks", err, contract.CodeConfiguration, false)
	})
}

func TestRegistryCredentials(t *testing.T) {
	requireRegistries(t)
	ref := registryRef(authRegistry)
	registryImages(t, ref)
	sid := newSession(t)
	ctx := ctxFor(t)

	cfg := smallConfig(sid)
	cfg.Image = ref

	t.Run("wrong password", func(t *testing.T) {
		d := newDriver(t, dockerdriver.WithRegistryAuth(registry.AuthConfig{
			ServerAddress: authRegistry, Username: registryUser, Password: wrongPassword}))
		_, err := d.CreateContainer(ctx, cfg)
		wantCode(t, "wrong password", err, contract.CodeAuthentication, false)
		assertNoSecret(t, err, wrongPassword)
		if imagePresent(t, ref) {
			t.Errorf("image %s present after a refused pull", ref)
		}
	})

	t.Run("unknown user", func(t *testing.T) {
		d := newDriver(t, dockerdriver.WithRegistryAuth(registry.AuthConfig{
			ServerAddress: authRegistry, Username: "nobody", Password: wrongPassword}))
		_, err := d.CreateContainer(ctx, cfg)
		wantCode(t, "unknown user", err, contract.CodeAuthentication, false)
		assertNoSecret(t, err, wrongPassword)
	})

	t.Run("credentials of another registry", func(t *testing.T) {
		// Credentials for :5000 are not sent to :5001.
		d := newDriver(t, dockerdriver.WithRegistryAuth(registry.AuthConfig{
			ServerAddress: openRegistry, Username: registryUser, Password: registryPass}))
		_, err := d.CreateContainer(ctx, cfg)
		wantCode(t, "no credentials for the registry", err, contract.CodeAuthentication, false)
		assertNoSecret(t, err, registryPass)
	})

	t.Run("right password", func(t *testing.T) {
		d := newDriver(t, dockerdriver.WithRegistryAuth(registry.AuthConfig{
			ServerAddress: authRegistry, Username: registryUser, Password: registryPass}))
		inst := create(t, ctx, d, cfg)
		if !imagePresent(t, ref) {
			t.Fatalf("image %s is not on the engine after an authenticated pull", ref)
		}
		removeQuietly(t, d, inst.ID)
	})
}

// assertNoSecret checks that secret appears nowhere in err or its causes.
func assertNoSecret(t *testing.T, err error, secret string) {
	t.Helper()
	for e := err; e != nil; e = errors.Unwrap(e) {
		for _, s := range []string{e.Error(), fmt.Sprintf("%+v", e), fmt.Sprintf("%#v", e)} {
			if strings.Contains(s, secret) {
				t.Errorf("the password appears in the error: %q", s)
				return
			}
		}
	}
}
