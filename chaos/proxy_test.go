package chaos

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// daemonPath is the way from a driver to the daemon in the fault tests:
//
//	driver -> Toxiproxy (127.0.0.1:P) -> hop (127.0.0.1:H) -> dockerd (tcp 127.0.0.1:2375)
//
// Toxiproxy, in-process, injects faults on the TCP stream: latency,
// resets, stalls, and the daemon going away (the proxy disabled). The hop
// is a small HTTP reverse proxy that records every request that reaches
// the daemon and can lose the response of chosen requests after the daemon
// has acted on them, or hang up on chosen requests before the daemon sees
// them.
type daemonPath struct {
	Host  string // for dockerdriver.WithHost: "tcp://127.0.0.1:P"
	proxy *toxiproxy.Proxy
	hop   *hop
}

func newDaemonPath(t testing.TB) *daemonPath {
	t.Helper()
	h := newHop(t, daemonTCP)
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	p := toxiproxy.NewProxy(server, "dockerd", "127.0.0.1:0", h.addr)
	if err := p.Start(); err != nil {
		t.Fatalf("starting toxiproxy: %v", err)
	}
	t.Cleanup(p.Stop)
	return &daemonPath{Host: "tcp://" + p.Listen, proxy: p, hop: h}
}

// toxic adds a Toxiproxy toxic: kind is "latency", "reset_peer",
// "timeout", "limit_data", ...; stream "upstream" (requests) or
// "downstream" (responses); toxicity the share of connections it applies
// to; attrs its attributes.
func (p *daemonPath) toxic(t testing.TB, name, kind, stream string, toxicity float64, attrs map[string]int64) {
	t.Helper()
	var a []string
	for k, v := range attrs {
		a = append(a, fmt.Sprintf("%q:%d", k, v))
	}
	js := fmt.Sprintf(`{"name":%q,"type":%q,"stream":%q,"toxicity":%g,"attributes":{%s}}`,
		name, kind, stream, toxicity, strings.Join(a, ","))
	if _, err := p.proxy.Toxics.AddToxicJson(strings.NewReader(js)); err != nil {
		t.Fatalf("adding toxic %s: %v", js, err)
	}
}

// clearToxics removes every toxic.
func (p *daemonPath) clearToxics() { p.proxy.Toxics.ResetToxics(context.Background()) }

// down disables the proxy: connections are refused, open ones are cut.
func (p *daemonPath) down() { p.proxy.Stop() }

// up enables the proxy again on the same address.
func (p *daemonPath) up(t testing.TB) {
	t.Helper()
	if err := p.proxy.Start(); err != nil {
		t.Fatalf("restarting toxiproxy on %s: %v", p.proxy.Listen, err)
	}
}

// request is one request that reached the hop.
type request struct {
	Method string
	Path   string // without the /vX.Y prefix
	Query  url.Values
	At     time.Time
	Lost   bool // the hop dropped the response
	// Refused: the hop hung up without forwarding the request, so the
	// daemon never saw it.
	Refused bool
}

// hop is a recording HTTP reverse proxy in front of the daemon.
type hop struct {
	addr string
	srv  *http.Server
	tr   *http.Transport

	mu    sync.Mutex
	reqs  []request
	drops []*dropRule
}

type dropRule struct {
	match func(method, path string) bool
	left  int
	fault hopFault
}

// hopFault is what the hop does to a request a rule matches. The zero
// value lets the daemon act, waits for its answer and closes the client's
// connection without it.
type hopFault struct {
	// refuse closes the client's connection before the request is
	// forwarded: the daemon never sees it.
	refuse bool
	// acted, when set, runs once the daemon has answered and before the
	// answer is lost, on the hop's goroutine.
	acted func()
	// hold keeps the client waiting for the lost answer until it gives up
	// (at most holdLimit), so that its attempt ends by its own deadline
	// rather than by a closed connection.
	hold bool
}

// holdLimit bounds how long the hop holds a lost answer.
const holdLimit = 30 * time.Second

var versionPrefix = regexp.MustCompile(`^/v[0-9]+\.[0-9]+/`)

// apiPath returns the path of an API request without its version prefix:
// "/v1.41/containers/json" becomes "/containers/json".
func apiPath(p string) string {
	if loc := versionPrefix.FindStringIndex(p); loc != nil {
		return p[loc[1]-1:]
	}
	return p
}

func newHop(t testing.TB, upstream string) *hop {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hop: %v", err)
	}
	h := &hop{addr: ln.Addr().String(), tr: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
	}}
	target := &url.URL{Scheme: "http", Host: upstream}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target); r.Out.Host = r.In.Host },
		Transport:     h.tr,
		FlushInterval: -1,
		ErrorLog:      discardLogger,
		// A daemon that cannot be reached looks to the client as it would
		// without the hop: the connection ends without an answer.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) { hangUp(w) },
	}
	h.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, rp) }),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          discardLogger,
	}
	go func() { _ = h.srv.Serve(ln) }()
	t.Cleanup(func() {
		h.srv.Close()
		h.tr.CloseIdleConnections()
	})
	return h
}

func (h *hop) serve(w http.ResponseWriter, r *http.Request, rp *httputil.ReverseProxy) {
	path := apiPath(r.URL.Path)
	rec := request{Method: r.Method, Path: path, Query: r.URL.Query(), At: time.Now()}
	var fault *hopFault
	h.mu.Lock()
	for _, d := range h.drops {
		if d.left > 0 && d.match(r.Method, path) {
			d.left--
			fault = &d.fault
			rec.Refused = fault.refuse
			rec.Lost = !fault.refuse
			break
		}
	}
	h.reqs = append(h.reqs, rec)
	h.mu.Unlock()
	if fault == nil {
		rp.ServeHTTP(w, r)
		return
	}
	if fault.refuse {
		hangUp(w)
		return
	}
	// Let the daemon act, wait for its answer, and lose it.
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = "http", daemonTCP
	if resp, err := h.tr.RoundTrip(out); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if fault.acted != nil {
		fault.acted()
	}
	if fault.hold {
		t := time.NewTimer(holdLimit)
		select {
		case <-r.Context().Done():
		case <-t.C:
		}
		t.Stop()
	}
	hangUp(w)
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
		return
	}
	panic(http.ErrAbortHandler)
}

// loseResponses makes the hop lose the responses of the next n requests
// that match, after the daemon has handled them.
func (h *hop) loseResponses(n int, match func(method, path string) bool) {
	h.inject(n, match, hopFault{})
}

// inject applies fault to the next n requests that match.
func (h *hop) inject(n int, match func(method, path string) bool, fault hopFault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drops = append(h.drops, &dropRule{match: match, left: n, fault: fault})
}

// requests returns the requests recorded so far.
func (h *hop) requests() []request {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]request(nil), h.reqs...)
}

// count returns how many recorded requests match.
func (h *hop) count(match func(request) bool) int {
	n := 0
	for _, r := range h.requests() {
		if match(r) {
			n++
		}
	}
	return n
}

// reached returns how many recorded requests match and were forwarded to
// the daemon.
func (h *hop) reached(match func(method, path string) bool) int {
	return h.count(func(q request) bool { return !q.Refused && match(q.Method, q.Path) })
}

// reset forgets the recorded requests.
func (h *hop) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = nil
}

// isCreate matches POST /containers/create.
func isCreate(method, path string) bool {
	return method == http.MethodPost && path == "/containers/create"
}

// isContainerAction returns a matcher of POST /containers/<id>/<action>
// for any of actions.
func isContainerAction(id string, actions ...string) func(method, path string) bool {
	return func(method, path string) bool {
		if method != http.MethodPost {
			return false
		}
		for _, a := range actions {
			if path == "/containers/"+id+"/"+a {
				return true
			}
		}
		return false
	}
}
