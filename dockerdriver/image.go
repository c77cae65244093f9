package dockerdriver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"

	"github.com/resilientdriver/resilient/contract"
)

// pull pulls ref and waits until the daemon has it. One pull per image
// runs at a time, however many creates need it: a create that needs an
// image being pulled waits for that pull. The pull runs as long as one of
// the calls waiting for it does, and reports its progress to each of them
// (contract.Progress), so that a timeout layer outside cuts a pull that
// stalls, never one that makes progress.
func (d *Driver) pull(ctx context.Context, o contract.OpInfo, ref string) error {
	d.pulls.mu.Lock()
	if d.pulls.m == nil {
		d.pulls.m = map[string]*pullCall{}
	}
	c := d.pulls.m[ref]
	if c == nil {
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &pullCall{done: make(chan struct{}), cancel: cancel, waiters: map[*context.Context]struct{}{}}
		d.pulls.m[ref] = c
		go func() {
			c.err = d.pullOnce(pctx, o, ref, func() { d.pullProgress(c) })
			d.pulls.mu.Lock()
			delete(d.pulls.m, ref)
			d.pulls.mu.Unlock()
			cancel()
			close(c.done)
		}()
	}
	key := &ctx
	c.waiters[key] = struct{}{}
	d.pulls.mu.Unlock()
	defer func() {
		d.pulls.mu.Lock()
		delete(c.waiters, key)
		if len(c.waiters) == 0 {
			c.cancel() // nobody waits for it any more
		}
		d.pulls.mu.Unlock()
	}()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return mapErr(ctx, o, "", ctx.Err())
	}
}

// pullGroup holds the pulls in progress, by image reference.
type pullGroup struct {
	mu sync.Mutex
	m  map[string]*pullCall
}

// pullCall is one pull and the calls that wait for it.
type pullCall struct {
	done    chan struct{}
	err     error
	cancel  context.CancelFunc
	waiters map[*context.Context]struct{} // guarded by the group's mu
}

func (d *Driver) pullProgress(c *pullCall) {
	d.pulls.mu.Lock()
	defer d.pulls.mu.Unlock()
	for w := range c.waiters {
		contract.Progress(*w)
	}
}

// pullOnce pulls ref with the credentials of its registry, if any were
// given, calling progress for every message the daemon sends.
func (d *Driver) pullOnce(ctx context.Context, o contract.OpInfo, ref string, progress func()) error {
	opts := image.PullOptions{}
	if auth, ok := d.authFor(ref); ok {
		enc, err := registry.EncodeAuthConfig(auth)
		if err != nil {
			return newErr(o, contract.CodeConfiguration, "", "cannot encode the registry credentials", nil)
		}
		opts.RegistryAuth = enc
	}
	body, err := d.cli.ImagePull(ctx, ref, opts)
	if err != nil {
		return pullErr(ctx, o, ref, err)
	}
	defer body.Close()
	// The pull happens while the progress stream is read; an error may come
	// as its last message.
	dec := json.NewDecoder(body)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&msg); err != nil {
			if err == io.EOF {
				return nil
			}
			return mapErr(ctx, o, "", fmt.Errorf("reading the pull progress of %q: %w", ref, err))
		}
		progress()
		text := msg.Error
		if msg.ErrorDetail != nil && msg.ErrorDetail.Message != "" {
			text = msg.ErrorDetail.Message
		}
		if text != "" {
			return pullErr(ctx, o, ref, errors.New(text))
		}
	}
}

// pullErr maps a failed pull: an image the registry does not have is a
// CONFIGURATION error, refused or missing credentials (a registry that asks
// for basic auth when none were given for it) AUTHENTICATION, refused access
// AUTHORIZATION; anything else is mapped as usual (a registry that cannot be
// reached gives a retryable CONTAINER_CREATION).
func pullErr(ctx context.Context, o contract.OpInfo, ref string, err error) error {
	if ctx.Err() != nil {
		return mapErr(ctx, o, "", err)
	}
	msg := strings.ToLower(err.Error())
	switch {
	case cerrdefs.IsUnauthorized(err), strings.Contains(msg, "unauthorized"), strings.Contains(msg, "authentication required"),
		strings.Contains(msg, "no basic auth credentials"):
		return newErr(o, contract.CodeAuthentication, "", fmt.Sprintf("the registry refused the credentials for %q", ref), err)
	case cerrdefs.IsNotFound(err), strings.Contains(msg, "manifest unknown"), strings.Contains(msg, "not found"),
		strings.Contains(msg, "repository does not exist"):
		return newErr(o, contract.CodeConfiguration, "", fmt.Sprintf("image %q cannot be pulled: its registry does not have it or needs credentials", ref), err)
	case cerrdefs.IsPermissionDenied(err), strings.Contains(msg, "denied"):
		return newErr(o, contract.CodeAuthorization, "", fmt.Sprintf("the registry denied access to %q", ref), err)
	}
	return mapErr(ctx, o, "", fmt.Errorf("pulling %q: %w", ref, err))
}

// authFor returns the credentials given for ref's registry.
func (d *Driver) authFor(ref string) (registry.AuthConfig, bool) {
	if len(d.cfg.auths) == 0 {
		return registry.AuthConfig{}, false
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return registry.AuthConfig{}, false
	}
	domain := normalizeRegistry(reference.Domain(named))
	for i := len(d.cfg.auths) - 1; i >= 0; i-- { // the last one given wins
		if normalizeRegistry(d.cfg.auths[i].ServerAddress) == domain {
			return d.cfg.auths[i], true
		}
	}
	return registry.AuthConfig{}, false
}

// normalizeRegistry reduces a registry address to a host[:port], with every
// name of Docker Hub as "docker.io".
func normalizeRegistry(addr string) string {
	addr = strings.ToLower(strings.TrimSpace(addr))
	addr = strings.TrimPrefix(addr, "https://")
	addr = strings.TrimPrefix(addr, "http://")
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		addr = addr[:i]
	}
	switch addr {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		return "docker.io"
	}
	return addr
}
