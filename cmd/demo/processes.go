package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// process is a long-running child of the demo (the writer or a projector)
// whose output goes to a log file.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has exited
	err     error         // its exit status, once exited is closed
	// stopping is set before the demo stops the process, so that its exit
	// is not taken for a failure.
	stopping atomic.Bool
}

// startTimeout bounds the wait for a process's first line and readiness.
const startTimeout = 30 * time.Second

// startProcess starts bin with args and env, its output going to logPath,
// and waits for its first line of output (which says where it listens),
// which it returns. A process that exits first is reported with the end of
// its log.
//
// Each process gets a process group of its own, so that Ctrl-C in the
// terminal reaches the demo alone, which then stops the processes in
// order; and it gets SIGTERM should the demo die without stopping it.
func startProcess(name, logPath, bin string, args, env []string) (*process, string, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, exited: make(chan struct{})}
	first := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		logFile.WriteString(line)
		first <- strings.TrimSpace(line)
		io.Copy(logFile, r)
		p.err = cmd.Wait() // after the last read, as os/exec requires
		logFile.Close()
		close(p.exited)
	}()
	select {
	case line := <-first:
		if line != "" {
			return p, line, nil
		}
		<-p.exited
		return nil, "", blame(fmt.Errorf("%s exited as it started (%v)", name, p.err), p)
	case <-time.After(startTimeout):
		p.stop(time.Second)
		return nil, "", blame(fmt.Errorf("%s printed nothing within %s", name, startTimeout), p)
	}
}

// watch cancels ctx, with the process as the cause, if the process exits
// before the demo stops it.
func (p *process) watch(cancel context.CancelCauseFunc) {
	go func() {
		<-p.exited
		if !p.stopping.Load() {
			cancel(blame(fmt.Errorf("%s exited unexpectedly (%v)", p.name, p.err), p))
		}
	}()
}

// stop sends the process SIGTERM and waits up to grace for it to exit,
// then kills it. It returns what happened, for people.
func (p *process) stop(grace time.Duration) string {
	p.stopping.Store(true)
	select {
	case <-p.exited:
		return fmt.Sprintf("%s had already exited (%v)", p.name, p.err)
	default:
	}
	start := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Sprintf("%s stopped with %v", p.name, p.err)
		}
		return fmt.Sprintf("%s stopped in %s", p.name, time.Since(start).Round(time.Millisecond))
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Sprintf("%s did not stop within %s, and was killed", p.name, grace)
	}
}

// tail returns the last n lines of the process's log.
func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.logPath, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitReady polls base's /readyz until it answers 200.
func waitReady(ctx context.Context, p *process, base string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startTimeout)
	last := "no answer"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return blame(fmt.Errorf("%s is not ready after %s: %s/readyz answers %s", p.name, startTimeout, base, last), p)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// failure is an error that processes' logs explain.
type failure struct {
	err   error
	procs []*process
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// blame returns err as a failure that the logs of procs explain, unless it
// already names processes (or is nil, or the end of a context).
func blame(err error, procs ...*process) error {
	var f *failure
	if err == nil || errors.As(err, &f) || errors.Is(err, context.Canceled) {
		return err
	}
	return &failure{err: err, procs: procs}
}

// preferAddr returns addr when it is free to listen on, else a loopback
// address with any free port.
func preferAddr(addr string) string {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "127.0.0.1:0"
	}
	l.Close()
	return addr
}

// freeAddr is preferAddr with a port chosen now when addr's is taken, for
// an address another process must know before its own starts.
func freeAddr(addr string) string {
	if got := preferAddr(addr); got == addr {
		return addr
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return addr // the process will say it cannot listen
	}
	defer l.Close()
	return l.Addr().String()
}

// sleep waits d, or returns ctx's error when it ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
