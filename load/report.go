package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/resilientdriver/resilient/contract"
)

// report is the outcome of a run, as printed and as written to -json.
type report struct {
	Engine    string       `json:"engine"`
	CPUs      int          `json:"cpus"`
	Settings  string       `json:"settings"`
	Started   time.Time    `json:"started"`
	Finished  time.Time    `json:"finished"`
	Rows      []*rowResult `json:"rows"`
	Goals     []string     `json:"goals"`
	Notes     []string     `json:"notes,omitempty"`
	Leftovers []string     `json:"leftovers,omitempty"` // found by the final engine check
}

// rowResult holds one row's figures; durations are in milliseconds.
type rowResult struct {
	Burst      int            `json:"burst"`
	Driver     string         `json:"driver"`
	Warm       int            `json:"warm,omitempty"`      // sessions of the unmeasured burst before it
	WarmDone   int            `json:"warm_done,omitempty"` // of those, completed
	Deadline   time.Duration  `json:"-"`
	DeadlineMS float64        `json:"deadline_ms,omitempty"`
	Done       int            `json:"done"`
	Failed     map[string]int `json:"failed"`         // by code
	FailedAt   map[string]int `json:"failed_at_step"` // by step
	TimeMS     float64        `json:"time_ms"`        // burst start to the last session's outcome
	Throughput float64        `json:"sessions_per_s"` // done / time
	Status     statusFigures  `json:"status_read"`
	IdleStatus statusFigures  `json:"status_read_idle"`
	Ceiling    *ceiling       `json:"ceiling,omitempty"` // deadline rows
	Refused    int            `json:"refused"`           // RATE_LIMITED or CIRCUIT_OPEN
	// RefusedFast is how many of Refused came within 100ms of the start.
	RefusedFast   int                  `json:"refused_within_100ms"`
	TimeToFailure quantiles            `json:"time_to_failure_ms"`
	Steps         map[string]quantiles `json:"steps_ms"` // of the sessions done
	LogReads      quantiles            `json:"log_reads"`
	ErrorSamples  map[string]string    `json:"error_samples,omitempty"` // the first message of each code
	NonContract   []string             `json:"non_contract_errors,omitempty"`
	CleanupErrors []string             `json:"cleanup_errors,omitempty"`
	Leftovers     []string             `json:"leftovers,omitempty"`
	// WorkLimits is the work pool's limit every second of the burst, as
	// HealthCheck reports it (Wrap only).
	WorkLimits  []int     `json:"work_limits,omitempty"`
	sessions    []session // raw
	reads, idle reads     // raw
}

type statusFigures struct {
	N           int            `json:"n"`
	Failed      map[string]int `json:"failed,omitempty"`
	P50         float64        `json:"p50_ms"`
	P99         float64        `json:"p99_ms"`
	Max         float64        `json:"max_ms"`
	NonContract []string       `json:"non_contract_errors,omitempty"`
}

type quantiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

type ceiling struct {
	Sessions   float64 `json:"sessions"`       // throughput x deadline
	Throughput float64 `json:"sessions_per_s"` // of the bare row without deadline
	FromBurst  int     `json:"from_burst"`     // the bare row's burst
}

// summarize computes the row's figures from what it recorded.
func (r *rowResult) summarize() {
	r.DeadlineMS = msOf(r.Deadline)
	r.Failed, r.FailedAt, r.ErrorSamples = map[string]int{}, map[string]int{}, map[string]string{}
	var end time.Duration
	var ttf []time.Duration
	var steps [numSteps][]time.Duration
	var logReads []time.Duration // counts, as durations for the quantiles
	for _, s := range r.sessions {
		end = max(end, s.Elapsed)
		if s.Err == nil {
			r.Done++
			for i, d := range s.Steps {
				steps[i] = append(steps[i], d)
			}
			logReads = append(logReads, time.Duration(s.Reads))
			continue
		}
		code := codeOf(s.Err)
		r.Failed[code]++
		r.FailedAt[s.Step]++
		if _, ok := r.ErrorSamples[code]; !ok {
			r.ErrorSamples[code] = s.Err.Error()
		}
		ttf = append(ttf, s.Elapsed)
		if contract.RejectedLocally(s.Err) {
			r.Refused++
			if s.Elapsed <= fastRefusal {
				r.RefusedFast++
			}
		}
		if !isContractError(s.Err) && !(errors.Is(s.Err, errNoFirstLine) && r.Deadline > 0) {
			r.NonContract = append(r.NonContract, fmt.Sprintf("%s at %s: %v", code, s.Step, s.Err))
		}
		if s.Cleanup != nil {
			r.CleanupErrors = append(r.CleanupErrors, s.Cleanup.Error())
		}
	}
	r.TimeMS = msOf(end)
	if end > 0 {
		r.Throughput = float64(r.Done) / end.Seconds()
	}
	r.TimeToFailure = quantilesOf(ttf, msOf)
	r.Steps = map[string]quantiles{}
	for i, l := range steps {
		r.Steps[stepNames[i]] = quantilesOf(l, msOf)
	}
	r.LogReads = quantilesOf(logReads, func(d time.Duration) float64 { return float64(d) })
	r.Status, r.IdleStatus = statusOf(r.reads), statusOf(r.idle)
}

func statusOf(rd reads) statusFigures {
	q := quantilesOf(rd.Latency, msOf)
	f := statusFigures{N: q.N, P50: q.P50, P99: q.P99, Max: q.Max}
	if len(rd.Failed) > 0 {
		f.Failed = rd.Failed
	}
	for _, err := range rd.Errors {
		f.NonContract = append(f.NonContract, err.Error())
	}
	return f
}

// derive fills what rows take from each other (the ceilings) and the
// goals of issue 11.
func (rep *report) derive() {
	for _, r := range rep.Rows {
		if r.Deadline == 0 {
			continue
		}
		ref := rep.find(r.Burst, "bare", 0)
		if ref == nil { // no bare row of the same size: the largest there is
			for _, o := range rep.Rows {
				if o.Driver == "bare" && o.Deadline == 0 && (ref == nil || o.Burst > ref.Burst) {
					ref = o
				}
			}
		}
		if ref != nil {
			r.Ceiling = &ceiling{Sessions: ref.Throughput * r.Deadline.Seconds(), Throughput: ref.Throughput, FromBurst: ref.Burst}
		}
	}
	rep.Goals = nil
	for _, w := range rep.Rows {
		b := rep.find(w.Burst, "bare", w.Deadline)
		if w.Driver != "wrap" || b == nil {
			continue
		}
		if w.Deadline == 0 {
			rep.Goals = append(rep.Goals,
				goal(fmt.Sprintf("burst %d, no deadline: Wrap completes all", w.Burst), w.Done == w.Burst, "%d/%d", w.Done, w.Burst),
				goal(fmt.Sprintf("burst %d, no deadline: Wrap's time at most bare's", w.Burst), w.TimeMS <= b.TimeMS,
					"%s vs %s", fmtMS(w.TimeMS), fmtMS(b.TimeMS)),
				goal(fmt.Sprintf("burst %d, no deadline: status read p99 at most 1.5x bare's", w.Burst), w.Status.P99 <= 1.5*b.Status.P99,
					"%s vs %s (%.1fx)", fmtMS(w.Status.P99), fmtMS(b.Status.P99), ratio(w.Status.P99, b.Status.P99)))
			continue
		}
		dl := fmt.Sprintf("burst %d, %v deadline", w.Burst, w.Deadline)
		c := "no ceiling"
		if w.Ceiling != nil {
			c = fmt.Sprintf("ceiling %.0f", w.Ceiling.Sessions)
		}
		if b.Done == b.Burst {
			c += "; bare completed all, so the goal cannot be met at this size"
		}
		rep.Goals = append(rep.Goals,
			goal(dl+": Wrap completes at least 1.25x bare's sessions", float64(w.Done) >= 1.25*float64(b.Done),
				"%d vs %d (%.2fx), %s", w.Done, b.Done, ratio(float64(w.Done), float64(b.Done)), c))
		if w.Refused > 0 {
			rep.Goals = append(rep.Goals, goal(dl+": at least 90% of refusals within 100ms", float64(w.RefusedFast) >= 0.9*float64(w.Refused),
				"%d of %d (%.0f%%)", w.RefusedFast, w.Refused, 100*float64(w.RefusedFast)/float64(w.Refused)))
		}
	}
}

func goal(what string, met bool, format string, args ...any) string {
	verdict := "not met"
	if met {
		verdict = "met"
	}
	return fmt.Sprintf("%s: %s (%s)", what, verdict, fmt.Sprintf(format, args...))
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (rep *report) find(burst int, driver string, deadline time.Duration) *rowResult {
	for _, r := range rep.Rows {
		if r.Burst == burst && r.Driver == driver && r.Deadline == deadline {
			return r
		}
	}
	return nil
}

// problems lists what makes the run fail: errors that are not the
// contract's, status reads that found nothing, and anything left on the
// engine. Performance never does.
func (rep *report) problems() []string {
	var out []string
	for _, r := range rep.Rows {
		name := fmt.Sprintf("burst %d %s %s", r.Burst, r.Driver, deadlineName(r.Deadline))
		if r.Done+sum(r.Failed) != r.Burst {
			out = append(out, fmt.Sprintf("%s: %d done and %d failed of %d sessions", name, r.Done, sum(r.Failed), r.Burst))
		}
		for _, e := range r.NonContract {
			out = append(out, fmt.Sprintf("%s: a session failed with an error that is not a contract error: %s", name, e))
		}
		for _, st := range []statusFigures{r.IdleStatus, r.Status} {
			for _, e := range st.NonContract {
				out = append(out, fmt.Sprintf("%s: status read: %s", name, e))
			}
		}
		for _, l := range r.Leftovers {
			out = append(out, fmt.Sprintf("%s: left on the engine: %s", name, l))
		}
	}
	for _, l := range rep.Leftovers {
		out = append(out, "left on the engine at the end: "+l)
	}
	return out
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// driverCell names the row's driver, and the burst before it, if any.
func (r *rowResult) driverCell() string {
	if r.Warm == 0 {
		return driverName(r.Driver)
	}
	return fmt.Sprintf("%s, after a burst of %d (%d done)", driverName(r.Driver), r.Warm, r.WarmDone)
}

func (r *rowResult) oneLine() string {
	return fmt.Sprintf("burst %d %s %s: %d/%d done, failed %s, %s, status read p99 %s (max %s)",
		r.Burst, r.Driver, deadlineName(r.Deadline), r.Done, r.Burst, failedText(r.Failed), fmtMS(r.TimeMS), fmtMS(r.Status.P99), fmtMS(r.Status.Max))
}

// write prints the table of issue 11 and the figures behind it.
func (rep *report) write(w io.Writer) {
	fmt.Fprintf(w, "%s, %d CPUs; %s\n\n", rep.Engine, rep.CPUs, rep.Settings)
	fmt.Fprintln(w, "| burst | driver | sessions done | failed (by code) | time | status read p99 (max) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rep.Rows {
		fmt.Fprintf(w, "| %d, %s | %s | %d/%d | %s | %s | %s (max %s) |\n", r.Burst, deadlineName(r.Deadline), r.driverCell(),
			r.Done, r.Burst, failedText(r.Failed), fmtMS(r.TimeMS), fmtMS(r.Status.P99), fmtMS(r.Status.Max))
	}

	fmt.Fprintln(w, "\nSessions/s is done / time; the ceiling of a deadline row is the bare driver's sessions/s without deadline at that burst times the deadline. Refused = RATE_LIMITED or CIRCUIT_OPEN; time to failure counts from the burst's start.")
	fmt.Fprintln(w, "\n| burst | driver | sessions/s | ceiling | refused within 100ms | time to failure p50 / p90 / max | status reads (failed) | status read idle p99 |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rep.Rows {
		c := "-"
		if r.Ceiling != nil {
			c = fmt.Sprintf("%.0f (%.2f/s x %v", r.Ceiling.Sessions, r.Ceiling.Throughput, r.Deadline)
			if r.Ceiling.FromBurst != r.Burst {
				c += fmt.Sprintf(", from burst %d", r.Ceiling.FromBurst)
			}
			c += ")"
		}
		refused := "-"
		if r.Refused > 0 {
			refused = fmt.Sprintf("%d/%d (%.0f%%)", r.RefusedFast, r.Refused, 100*float64(r.RefusedFast)/float64(r.Refused))
		}
		ttf := "-"
		if q := r.TimeToFailure; q.N > 0 {
			ttf = fmt.Sprintf("%s / %s / %s", fmtMS(q.P50), fmtMS(q.P90), fmtMS(q.Max))
		}
		reads := fmt.Sprintf("%d", r.Status.N)
		if len(r.Status.Failed) > 0 {
			reads += " (" + failedText(r.Status.Failed) + ")"
		}
		fmt.Fprintf(w, "| %d, %s | %s | %.2f | %s | %s | %s | %s | %s |\n", r.Burst, deadlineName(r.Deadline), r.driverCell(),
			r.Throughput, c, refused, ttf, reads, fmtMS(r.IdleStatus.P99))
	}

	fmt.Fprintln(w, "\nWhere the time of a completed session goes, p50 / p99 per step; failed sessions by the step they failed at.")
	fmt.Fprintln(w, "\n| burst | driver | create | start | first line | stop | remove | log reads p50 / max | failed at |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, r := range rep.Rows {
		fmt.Fprintf(w, "| %d, %s | %s |", r.Burst, deadlineName(r.Deadline), r.driverCell())
		for _, n := range stepNames {
			q := r.Steps[n]
			if q.N == 0 {
				fmt.Fprint(w, " - |")
				continue
			}
			fmt.Fprintf(w, " %s / %s |", fmtMS(q.P50), fmtMS(q.P99))
		}
		fmt.Fprintf(w, " %.0f / %.0f | %s |\n", r.LogReads.P50, r.LogReads.Max, failedText(r.FailedAt))
	}

	for _, r := range rep.Rows {
		if len(r.WorkLimits) > 0 {
			fmt.Fprintf(w, "\nWork limit of %s during burst %d, %s (HealthCheck every second): min %d, max %d, last %d.\n",
				r.driverCell(), r.Burst, deadlineName(r.Deadline), slices.Min(r.WorkLimits), slices.Max(r.WorkLimits), r.WorkLimits[len(r.WorkLimits)-1])
		}
	}

	if len(rep.Goals) > 0 {
		fmt.Fprintln(w, "\nGoals of issue 11 (reported, not asserted):")
		for _, g := range rep.Goals {
			fmt.Fprintln(w, "- "+g)
		}
	}
	var samples []string
	for _, r := range rep.Rows {
		for _, code := range slices.Sorted(maps.Keys(r.ErrorSamples)) {
			samples = append(samples, fmt.Sprintf("- burst %d %s %s, %s: %s", r.Burst, r.Driver, deadlineName(r.Deadline), code, oneLineText(r.ErrorSamples[code])))
		}
		for _, e := range r.CleanupErrors {
			samples = append(samples, fmt.Sprintf("- burst %d %s %s, cleanup: %s", r.Burst, r.Driver, deadlineName(r.Deadline), oneLineText(e)))
		}
	}
	if len(samples) > 0 {
		fmt.Fprintln(w, "\nFirst error of each code:")
		fmt.Fprintln(w, strings.Join(samples, "\n"))
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "\nNote: "+n)
	}
	left := len(rep.Leftovers)
	for _, r := range rep.Rows {
		left += len(r.Leftovers)
	}
	fmt.Fprintf(w, "\nEngine check (label %s.managed=true, after each row and at the end): %d containers left.\n", labelPrefix, left)
}

func deadlineName(d time.Duration) string {
	if d == 0 {
		return "no deadline"
	}
	return fmt.Sprintf("%v deadline each", d)
}

func driverName(d string) string {
	if d == "wrap" {
		return "Wrap"
	}
	return d
}

// failedText is "0", or counts by name, most first: "130 RATE_LIMITED, 20 TIMEOUT".
func failedText(m map[string]int) string {
	if sum(m) == 0 {
		return "0"
	}
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return m[b] - m[a]
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], k))
	}
	return strings.Join(parts, ", ")
}

func oneLineText(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtMS prints milliseconds as "72 ms", "3.4 ms" or "2.1 s".
func fmtMS(ms float64) string {
	switch {
	case ms >= 1000:
		return fmt.Sprintf("%.1f s", ms/1000)
	case ms >= 10:
		return fmt.Sprintf("%.0f ms", ms)
	default:
		return fmt.Sprintf("%.1f ms", ms)
	}
}

// quantilesOf returns the nearest-rank quantiles of l, each through f.
func quantilesOf(l []time.Duration, f func(time.Duration) float64) quantiles {
	if len(l) == 0 {
		return quantiles{}
	}
	s := slices.Clone(l)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := int(float64(len(s))*p/100+0.999999) - 1
		return f(s[min(max(i, 0), len(s)-1)])
	}
	return quantiles{N: len(s), P50: at(50), P90: at(90), P99: at(99), Max: f(s[len(s)-1])}
}
