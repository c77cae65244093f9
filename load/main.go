// Command load measures the Docker driver under a burst of sessions, bare
// and through resilient.Wrap with its defaults, in the same run, against
// the real daemon.
//
// A session is create (contract.NewContainerConfig with the workload image,
// whose default command serves and prints a first line), start, logs until
// that first line shows, stop, remove. Every session of a burst starts at
// once. Meanwhile a poller reads one running container's status every
// -poll through the same driver, as a status page would, and the latency
// of each read is recorded.
//
// Usage (from load/):
//
//	go run . [-bursts 50,150] [-deadline 12s] [-deadline-bursts 150]
//	         [-drivers bare,wrap] [-poll 25ms] [-logs poll|stream] [-json out.json]
//
// It prints one table with a row per burst and driver and the figures
// behind it, and exits 1 when a session failed with an error that is not a
// contract error or when anything it created is left on the engine.
// Performance goals are reported, never asserted.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
)

func main() {
	cfg := defaultConfig()
	bursts := flag.String("bursts", "50,150", "comma-separated burst sizes, each run without a deadline")
	dlBursts := flag.String("deadline-bursts", "", "burst sizes run with -deadline per session (default: the largest of -bursts)")
	flag.DurationVar(&cfg.Deadline, "deadline", cfg.Deadline, "deadline of each session in the deadline rows, one context for the whole session; 0: no deadline rows")
	drivers := flag.String("drivers", strings.Join(cfg.Drivers, ","), "drivers to measure: bare (dockerdriver), wrap (resilient.Wrap(dockerdriver) with its defaults)")
	flag.DurationVar(&cfg.Poll, "poll", cfg.Poll, "interval of the status poller")
	flag.StringVar(&cfg.Logs, "logs", cfg.Logs, "how a session waits for the first line: poll (GetContainerLogs every -logpoll) or stream (StreamContainerLogs)")
	flag.DurationVar(&cfg.LogPoll, "logpoll", cfg.LogPoll, "sleep between log reads with -logs poll")
	flag.DurationVar(&cfg.Stop, "stop", cfg.Stop, "grace period of each session's stop")
	flag.DurationVar(&cfg.Idle, "idle", cfg.Idle, "how long the poller reads before each burst, for the idle figure")
	flag.DurationVar(&cfg.Settle, "settle", cfg.Settle, "pause between rows, so that one row's leftovers of daemon work do not land in the next")
	flag.IntVar(&cfg.Warm, "warm", cfg.Warm, "sessions of an unmeasured burst run before each row through the same driver (0: none), with the row's deadline")
	jsonOut := flag.String("json", "", "also write the results to this file as JSON")
	flag.Parse()

	var err error
	if cfg.Bursts, err = parseInts(*bursts); err != nil {
		fatalf("-bursts: %v", err)
	}
	if *dlBursts != "" {
		if cfg.DeadlineBursts, err = parseInts(*dlBursts); err != nil {
			fatalf("-deadline-bursts: %v", err)
		}
	} else if len(cfg.Bursts) > 0 {
		cfg.DeadlineBursts = []int{largest(cfg.Bursts)}
	}
	cfg.Drivers = splitList(*drivers)
	cfg.Progress = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	if err := cfg.check(); err != nil {
		fatalf("%v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := run(ctx, cfg)
	if err != nil {
		fatalf("%v", err)
	}
	rep.write(os.Stdout)
	if *jsonOut != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err == nil {
			err = os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
		}
		if err != nil {
			fatalf("-json: %v", err)
		}
	}
	if problems := rep.problems(); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "load: FAIL:", p)
		}
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "load: "+format+"\n", args...)
	os.Exit(2)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range splitList(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func largest(l []int) int {
	m := 0
	for _, n := range l {
		m = max(m, n)
	}
	return m
}
