package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/docker/docker/client"

	"github.com/resilientdriver/resilient"
	"github.com/resilientdriver/resilient/contract"
	"github.com/resilientdriver/resilient/dockerdriver"
	"github.com/resilientdriver/resilient/memdriver"
)

// idSeeds are ids that try to leave their resource: other API paths,
// query strings, dot segments, escapes, huge strings, NUL bytes, control
// characters and unicode.
var idSeeds = []string{
	"", ".", "..", "../../images/json", "../../../v1.41/containers/json", "/containers/json",
	"x?force=1", "x?force=true&v=1", "abc#frag", "a/../../images/json", "a/b",
	"%2e%2e%2fimages%2fjson", "..%2f..%2fimages", "abc%00def", "a\x00b", "\x00",
	"abc\ndef", "abc\r\nX-Injected: 1", " abc", "abc ", "-abc", "_abc", "a..b",
	"名前", "ab\u202ecd", "\xff\xfe", strings.Repeat("a", 255), strings.Repeat("a", 256),
	strings.Repeat("a", 1<<16), strings.Repeat("../", 200) + "images/json",
	"0123456789ab", "resilient-k0123456789abcdef01234567", "bridge", "host", "none",
}

// idCase is one operation that takes an id.
type idCase struct {
	op   contract.Op
	call func(ctx context.Context, d contract.ContainerDriver, id string) error
	// codes are the errors the operation may give for an id that names
	// nothing of the driver's.
	codes []contract.Code
}

var idCases = []idCase{
	{contract.OpStartContainer, func(ctx context.Context, d contract.ContainerDriver, id string) error {
		return d.StartContainer(ctx, id)
	}, []contract.Code{contract.CodeContainerNotFound, contract.CodeConfiguration}},
	{contract.OpStopContainer, func(ctx context.Context, d contract.ContainerDriver, id string) error {
		return d.StopContainer(ctx, id, contract.StopOptions{Timeout: time.Second})
	}, []contract.Code{contract.CodeContainerNotFound, contract.CodeConfiguration}},
	{contract.OpRemoveContainer, func(ctx context.Context, d contract.ContainerDriver, id string) error {
		return d.RemoveContainer(ctx, id)
	}, []contract.Code{contract.CodeContainerNotFound, contract.CodeConfiguration}},
	{contract.OpGetContainer, func(ctx context.Context, d contract.ContainerDriver, id string) error {
		c, err := d.GetContainer(ctx, id)
		if err == nil && c != nil {
			return fmt.Errorf("GetContainer(%q) found %s", id, c.ID)
		}
		return err
	}, []contract.Code{contract.CodeContainerNotFound, contract.CodeConfiguration}},
	{contract.OpGetContainerLogs, func(ctx context.Context, d contract.ContainerDriver, id string) error {
		_, err := d.GetContainerLogs(ctx, id, contract.LogOptions{Tail: 1})
		return err
	}, []contract.Code{contract.CodeContainerNotFound, contract.CodeConfiguration}},
	{contract.OpStreamContainerLogs, func(ctx context.Context, d contract.ContainerDriver, id string) error {
		s, ok := d.(contract.LogStreamer)
		if !ok {
			return contract.ErrContainerNotFound
		}
		rc, err := s.StreamContainerLogs(ctx, id, contract.LogOptions{})
		if err == nil {
			rc.Close()
			return fmt.Errorf("StreamContainerLogs(%q) opened a stream", id)
		}
		return err
	}, []contract.Code{contract.CodeContainerNotFound, contract.CodeConfiguration}},
	{contract.OpIsContainerHealthy, func(ctx context.Context, d contract.ContainerDriver, id string) error {
		_, err := d.IsContainerHealthy(ctx, id)
		return err
	}, []contract.Code{contract.CodeContainerNotFound, contract.CodeConfiguration}},
	{contract.OpRemoveVolume, func(ctx context.Context, d contract.ContainerDriver, id string) error {
		return d.RemoveVolume(ctx, id)
	}, []contract.Code{contract.CodeVolumeNotFound, contract.CodeConfiguration}},
	{contract.OpRemoveNetwork, func(ctx context.Context, d contract.ContainerDriver, id string) error {
		return d.RemoveNetwork(ctx, id)
		// memdriver's pre-defined networks (bridge, host, none) exist and
		// cannot be removed.
	}, []contract.Code{contract.CodeNetworkNotFound, contract.CodeNetworkRemove, contract.CodeConfiguration}},
}

// maxErrorText bounds the text of an error about a bad id: the id is
// shown shortened, if at all.
const maxErrorText = 1024

// checkIDError fails the test unless err is a clear error of one of codes:
// a *contract.DriverError, not retryable, with short text that has no
// control characters (an id with a newline must not forge log lines).
func checkIDError(t *testing.T, driver string, c idCase, id string, err error) {
	t.Helper()
	if err == nil {
		if c.op == contract.OpGetContainer {
			return // nil, nil: no such container
		}
		t.Fatalf("%s %s(%.80q) succeeded", driver, c.op, id)
	}
	var de *contract.DriverError
	if !errors.As(err, &de) {
		t.Fatalf("%s %s(%.80q): %v is not a *contract.DriverError", driver, c.op, id, err)
	}
	ok := false
	for _, code := range c.codes {
		ok = ok || de.Code == code
	}
	if !ok {
		t.Fatalf("%s %s(%.80q): code %s, want one of %v (%.300v)", driver, c.op, id, de.Code, c.codes, err)
	}
	if contract.IsRetryable(err) {
		t.Fatalf("%s %s(%.80q): a bad id is retryable: %.300v", driver, c.op, id, err)
	}
	msg := err.Error()
	if len(msg) > maxErrorText {
		t.Fatalf("%s %s(%.80q): error text of %d bytes: %.200q...", driver, c.op, id, len(msg), msg)
	}
	if i := strings.IndexFunc(msg, func(r rune) bool { return unicode.IsControl(r) }); i >= 0 {
		t.Fatalf("%s %s(%.80q): control character in the error text: %q", driver, c.op, id, msg)
	}
}

// FuzzContainerIDs calls every operation that takes an id, with ids that
// try to escape their resource, on memdriver and on the Docker driver,
// both behind resilient.Wrap. Each call fails with a clear, permanent
// NOT_FOUND or CONFIGURATION error and never panics, and every request
// the Docker driver sends stays on the endpoint of its operation.
func FuzzContainerIDs(f *testing.F) {
	for _, s := range idSeeds {
		f.Add(s)
	}
	f.Cleanup(func() { assertNothingLeft(f) })
	mem := resilient.Wrap(memdriver.New(), resilient.WithoutRateLimit())
	guard := newPathGuard()
	cli, err := client.NewClientWithOpts(client.WithHost("tcp://"+daemonTCP),
		client.WithHTTPClient(&http.Client{Transport: guard}), client.WithAPIVersionNegotiation())
	if err != nil {
		f.Fatal(err)
	}
	defer cli.Close()
	defer guard.inner.CloseIdleConnections()
	base, err := dockerdriver.New(dockerdriver.WithClient(cli), dockerdriver.WithLabelPrefix(labelPrefix))
	if err != nil {
		f.Fatal(err)
	}
	defer base.Close()
	// No rate limit: fuzzing calls as fast as it can, and the limit is not
	// what is tested here.
	dock := resilient.Wrap(base, resilient.WithoutRateLimit())

	f.Fuzz(func(t *testing.T, id string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, c := range idCases {
			checkIDError(t, "memdriver", c, id, c.call(ctx, mem, id))

			guard.expect(c.op, id)
			err := c.call(ctx, dock, id)
			if v := guard.violations(); len(v) > 0 {
				t.Fatalf("docker %s(%.80q) sent requests outside its resource:\n%s", c.op, id, strings.Join(v, "\n"))
			}
			checkIDError(t, "docker", c, id, err)
		}
	})
}

// pathGuard is an http.RoundTripper for the Docker client that checks
// every request against the endpoints of the operation under way before it
// leaves, and refuses (never sends) one that does not match.
type pathGuard struct {
	inner *http.Transport

	mu   sync.Mutex
	op   contract.Op
	id   string
	bad  []string
	seen int
}

func newPathGuard() *pathGuard {
	return &pathGuard{inner: &http.Transport{DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}}
}

func (g *pathGuard) expect(op contract.Op, id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.op, g.id, g.bad = op, id, nil
}

func (g *pathGuard) violations() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.bad
}

var fullID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// endpoints are the requests each operation may make, as method and path
// below the API version, with {id} for the resource's id.
var endpoints = map[contract.Op][]string{
	contract.OpStartContainer:      {"GET /containers/{id}/json", "POST /containers/{id}/start"},
	contract.OpStopContainer:       {"GET /containers/{id}/json", "POST /containers/{id}/stop", "POST /containers/{id}/kill", "POST /containers/{id}/wait"},
	contract.OpRemoveContainer:     {"GET /containers/{id}/json", "DELETE /containers/{id}"},
	contract.OpGetContainer:        {"GET /containers/{id}/json"},
	contract.OpGetContainerLogs:    {"GET /containers/{id}/json", "GET /containers/{id}/logs"},
	contract.OpStreamContainerLogs: {"GET /containers/{id}/json", "GET /containers/{id}/logs"},
	contract.OpIsContainerHealthy:  {"GET /containers/{id}/json"},
	contract.OpRemoveVolume:        {"GET /volumes/{id}", "DELETE /volumes/{id}"},
	contract.OpRemoveNetwork:       {"GET /networks/{id}", "DELETE /networks/{id}"},
}

// queryKeys are the query parameters the driver's requests may carry.
var queryKeys = map[string]bool{
	"stdout": true, "stderr": true, "timestamps": true, "follow": true, "tail": true, "since": true,
	"t": true, "signal": true, "condition": true, "size": true,
}

func (g *pathGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if why := g.check(req); why != "" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("request refused by the test: %s", why)
	}
	return g.inner.RoundTrip(req)
}

// check returns why req leaves the endpoints of the current operation, or
// "".
func (g *pathGuard) check(req *http.Request) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.seen++
	raw := req.URL.EscapedPath()
	p := apiPath(raw)
	if p == "/_ping" && (req.Method == http.MethodGet || req.Method == http.MethodHead) {
		return "" // version negotiation
	}
	why := ""
	switch {
	case path.Clean(raw) != raw:
		why = "path is not clean"
	case req.URL.Fragment != "" || req.URL.Opaque != "":
		why = "fragment or opaque URL"
	default:
		why = g.matchEndpoint(req.Method, p)
	}
	if why == "" {
		why = checkQuery(req.Method, p, req.URL.RawQuery)
	}
	if why != "" {
		why = fmt.Sprintf("%s %s?%s: %s (op %s, id %.80q)", req.Method, raw, req.URL.RawQuery, why, g.op, g.id)
		g.bad = append(g.bad, why)
	}
	return why
}

func (g *pathGuard) matchEndpoint(method, p string) string {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for _, ep := range endpoints[g.op] {
		m, tmpl, _ := strings.Cut(ep, " ")
		tsegs := strings.Split(strings.TrimPrefix(tmpl, "/"), "/")
		if m != method || len(tsegs) != len(segs) {
			continue
		}
		match := true
		for i, ts := range tsegs {
			if ts != "{id}" {
				match = match && segs[i] == ts
				continue
			}
			id, err := url.PathUnescape(segs[i])
			match = match && err == nil && (id == g.id || fullID.MatchString(id)) &&
				id != "." && id != ".." && !strings.ContainsAny(id, "/?#")
		}
		if match {
			return ""
		}
	}
	return fmt.Sprintf("not an endpoint of %s", g.op)
}

func checkQuery(method, p, raw string) string {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return "bad query"
	}
	for k, v := range q {
		if len(v) != 1 {
			return "repeated query parameter " + k
		}
		allowed := queryKeys[k] ||
			method == http.MethodDelete && strings.HasPrefix(p, "/containers/") && (k == "force" || k == "v")
		if !allowed {
			return "unexpected query parameter " + k
		}
	}
	return ""
}
