// Command workload is the tiny program baked into the resilient-workload test
// images. It is statically linked, uses only the standard library and is the
// only file in its image (besides /tmp and a minimal /etc/passwd), so
// integration tests can make a container do exactly one well-defined thing.
//
// Usage:
//
//	workload [SUBCOMMAND [ARG]]
//
// Subcommands:
//
//	serve           (default) print a startup line to stdout and one to
//	                stderr, serve HTTP on :8080 where GET /healthz answers
//	                200, run until SIGTERM or SIGINT, then print a line and
//	                exit 0.
//	print N         print N numbered lines, alternating stdout and stderr
//	                (line 1 to stdout, line 2 to stderr, ...), then exit 0.
//	sleep DURATION  sleep for DURATION (default 1h; Go syntax, e.g. 3s; a bare
//	                number means seconds), then exit 0. SIGTERM ends it early
//	                with exit 0.
//	exit CODE       exit immediately with status CODE.
//	probe [URL]     GET URL (default http://127.0.0.1:8080/healthz); exit 0
//	                on 200, 1 otherwise. Used as the image's HEALTHCHECK; with
//	                a URL such as http://other:8080/healthz it checks
//	                container-to-container connectivity.
//	ignore-term     ignore SIGTERM and sleep forever, so that a stop has to
//	                fall back to SIGKILL after its timeout.
//	whoami          print uid, gid, whether / is writable (by creating and
//	                removing a file), and the CapEff and NoNewPrivs lines of
//	                /proc/self/status.
//	spam BYTES [exit]
//	                write BYTES bytes of log lines to stdout, then sleep
//	                forever (or exit 0 when the second argument is "exit").
//	cat [FILE...]   copy each FILE, or stdin when there is none, to stdout;
//	                exit 1 with a message on stderr when one cannot be read.
//	append FILE TEXT
//	                append TEXT and a newline to FILE, creating it (mode
//	                0644), so that a test can count how often it ran.
//
// Output lines that tests match on are stable: "workload: ..." prefixes.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	args := os.Args[1:]
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		os.Exit(serve())
	case "print":
		os.Exit(printLines(intArg(args, 0, 10)))
	case "sleep":
		os.Exit(sleep(args))
	case "exit":
		os.Exit(intArg(args, 0, 0))
	case "probe":
		url := "http://127.0.0.1:8080/healthz"
		if len(args) > 0 {
			url = args[0]
		}
		os.Exit(probe(url))
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("workload: ignoring SIGTERM")
		for {
			time.Sleep(time.Hour)
		}
	case "whoami":
		os.Exit(whoami())
	case "spam":
		os.Exit(spam(args))
	case "cat":
		os.Exit(cat(args))
	case "append":
		os.Exit(appendLine(args))
	case "help", "-h", "--help":
		fmt.Println("usage: workload [serve|print N|sleep DURATION|exit CODE|probe [URL]|ignore-term|whoami|spam BYTES [exit]|cat [FILE...]|append FILE TEXT]")
	default:
		fmt.Fprintf(os.Stderr, "workload: unknown subcommand %q\n", cmd)
		os.Exit(2)
	}
}

// intArg returns args[i] as an int, def when absent; it exits 2 when invalid.
func intArg(args []string, i, def int) int {
	if len(args) <= i {
		return def
	}
	n, err := strconv.Atoi(args[i])
	if err != nil {
		fmt.Fprintf(os.Stderr, "workload: bad number %q\n", args[i])
		os.Exit(2)
	}
	return n
}

func serve() int {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)

	fmt.Fprintln(os.Stdout, "workload: serving on :8080")
	fmt.Fprintln(os.Stderr, "workload: stderr ready")

	select {
	case sig := <-sigc:
		fmt.Fprintf(os.Stdout, "workload: received %s, shutting down\n", sig)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		return 0
	case err := <-errc:
		fmt.Fprintf(os.Stderr, "workload: http server: %v\n", err)
		return 1
	}
}

func printLines(n int) int {
	for i := 1; i <= n; i++ {
		if i%2 == 1 {
			fmt.Fprintf(os.Stdout, "workload: stdout line %d\n", i)
		} else {
			fmt.Fprintf(os.Stderr, "workload: stderr line %d\n", i)
		}
	}
	return 0
}

func sleep(args []string) int {
	d := time.Hour
	if len(args) > 0 {
		var err error
		d, err = time.ParseDuration(args[0])
		if err != nil {
			secs, err2 := strconv.ParseFloat(args[0], 64)
			if err2 != nil {
				fmt.Fprintf(os.Stderr, "workload: bad duration %q\n", args[0])
				return 2
			}
			d = time.Duration(secs * float64(time.Second))
		}
	}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-time.After(d):
	case <-sigc:
	}
	return 0
}

func probe(url string) int {
	client := &http.Client{Timeout: 900 * time.Millisecond}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "workload: probe: %v\n", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "workload: probe: status %d\n", resp.StatusCode)
		return 1
	}
	return 0
}

func whoami() int {
	fmt.Printf("uid=%d\n", os.Getuid())
	fmt.Printf("gid=%d\n", os.Getgid())

	writable := "yes"
	name := fmt.Sprintf("/.workload-write-test-%d", os.Getpid())
	if f, err := os.Create(name); err != nil {
		writable = "no (" + errReason(err) + ")"
	} else {
		f.Close()
		os.Remove(name)
	}
	fmt.Printf("rootfs_writable=%s\n", writable)

	f, err := os.Open("/proc/self/status")
	if err != nil {
		fmt.Fprintf(os.Stderr, "workload: %v\n", err)
		return 1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "CapEff:") || strings.HasPrefix(line, "NoNewPrivs:") {
			fmt.Println(strings.Join(strings.Fields(line), " "))
		}
	}
	return 0
}

func errReason(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func spam(args []string) int {
	total := intArg(args, 0, 1<<20)
	line := []byte(strings.Repeat("x", 99) + "\n")
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	for written := 0; written < total; {
		chunk := line
		if rest := total - written; rest < len(chunk) {
			chunk = chunk[len(chunk)-rest:]
		}
		n, err := w.Write(chunk)
		written += n
		if err != nil {
			return 1
		}
	}
	if err := w.Flush(); err != nil {
		return 1
	}
	if len(args) > 1 && args[1] == "exit" {
		return 0
	}
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	<-sigc
	return 0
}

func cat(files []string) int {
	if len(files) == 0 {
		if _, err := io.Copy(os.Stdout, os.Stdin); err != nil {
			fmt.Fprintf(os.Stderr, "workload: cat: %v\n", err)
			return 1
		}
		return 0
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintf(os.Stderr, "workload: cat: %v\n", err)
			return 1
		}
		_, err = io.Copy(os.Stdout, f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "workload: cat: %v\n", err)
			return 1
		}
	}
	return 0
}

func appendLine(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "workload: append FILE TEXT")
		return 2
	}
	f, err := os.OpenFile(args[0], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "workload: append: %v\n", err)
		return 1
	}
	if _, err := fmt.Fprintln(f, args[1]); err != nil {
		f.Close()
		fmt.Fprintf(os.Stderr, "workload: append: %v\n", err)
		return 1
	}
	if err := f.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "workload: append: %v\n", err)
		return 1
	}
	return 0
}
