package dockerdriver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"

	"github.com/resilientdriver/resilient/contract"
)

// pull pulls ref with the credentials of its registry, if any were given,
// and waits until the daemon has it.
func (d *Driver) pull(ctx context.Context, o opInfo, ref string) error {
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
func pullErr(ctx context.Context, o opInfo, ref string, err error) error {
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
