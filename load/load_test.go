package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

// testConfig is the default config with short pauses, reporting each
// row to t.
func testConfig(t *testing.T) config {
	cfg := defaultConfig()
	cfg.Idle, cfg.Settle = time.Second, 2*time.Second
	cfg.Progress = t.Logf
	return cfg
}

// TestLoad runs a small table on the real daemon, bare and through
// resilient.Wrap with its defaults: a burst of 20 sessions without a
// deadline and one of 30 with 6s each. It checks correctness only, never
// timings, which are noisy: every session completes or fails with a
// contract error, every status read answers in the contract's terms, and
// the engine holds nothing of the run afterwards. The figures are in the
// test's output.
func TestLoad(t *testing.T) {
	cfg := testConfig(t)
	cfg.Bursts, cfg.DeadlineBursts, cfg.Deadline = []int{20}, []int{30}, 6*time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := run(ctx, cfg)
	if rep != nil {
		var b strings.Builder
		rep.write(&b)
		t.Log("\n" + b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != len(cfg.rows()) {
		t.Fatalf("%d rows measured, want %d", len(rep.Rows), len(cfg.rows()))
	}
	for _, p := range rep.problems() {
		t.Error(p)
	}
}

// TestLoadWarm runs a row after a warm-up burst through the same driver
// (-warm): both bursts leave nothing on the engine, and the row says how
// the warm-up went.
func TestLoadWarm(t *testing.T) {
	cfg := testConfig(t)
	cfg.Bursts, cfg.DeadlineBursts, cfg.Deadline = nil, []int{20}, 6*time.Second
	cfg.Drivers, cfg.Warm = []string{"wrap"}, 20
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.write(&b)
	t.Log("\n" + b.String())
	if len(rep.Rows) != 1 || rep.Rows[0].Warm != 20 || rep.Rows[0].WarmDone > 20 {
		t.Fatalf("rows = %+v, want one after a warm-up of 20", rep.Rows)
	}
	if !strings.Contains(b.String(), "after a burst of 20") {
		t.Error("the table does not say the row followed a warm-up burst")
	}
	for _, p := range rep.problems() {
		t.Error(p)
	}
}

// TestSummarize checks the figures and the verdicts of a row from
// sessions made up here: what counts as a contract error, a refusal and a
// fast one.
func TestSummarize(t *testing.T) {
	refused := contract.NewError(contract.CodeRateLimited, contract.OpCreateContainer, "", "no capacity", nil)
	r := &rowResult{Burst: 5, Driver: "wrap", Deadline: 12 * time.Second, sessions: []session{
		{Elapsed: 3 * time.Second},
		{Err: refused, Step: "create", Elapsed: 20 * time.Millisecond},
		{Err: fmt.Errorf("start: %w", contract.NewError(contract.CodeCircuitOpen, contract.OpStartContainer, "x", "open", nil)), Step: "start", Elapsed: 2 * time.Second},
		{Err: errNoFirstLine, Step: "first line", Elapsed: 12 * time.Second},
		{Err: errors.New("plain"), Step: "stop", Elapsed: 12 * time.Second},
	}}
	r.summarize()
	if r.Done != 1 || r.Refused != 2 || r.RefusedFast != 1 {
		t.Errorf("done %d, refused %d, fast %d; want 1, 2, 1", r.Done, r.Refused, r.RefusedFast)
	}
	if got := failedText(r.Failed); got != "1 CIRCUIT_OPEN, 1 NO_FIRST_LINE, 1 RATE_LIMITED, 1 non-contract *errors.errorString" {
		t.Errorf("failed = %q", got)
	}
	if len(r.NonContract) != 1 || !strings.Contains(r.NonContract[0], "plain") {
		t.Errorf("non-contract errors = %q, want the plain one only (a missing first line at a deadline is the harness's)", r.NonContract)
	}
	if r.TimeMS != 12000 || r.TimeToFailure.N != 4 || r.TimeToFailure.Max != 12000 {
		t.Errorf("time %v ms, time to failure %+v", r.TimeMS, r.TimeToFailure)
	}
	rep := &report{Rows: []*rowResult{r}}
	if p := rep.problems(); len(p) != 1 {
		t.Errorf("problems = %q, want one", p)
	}
}
