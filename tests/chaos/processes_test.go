package chaos

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles the package at pkg (relative to this directory)
// into dir, without the race detector: the processes under test are built
// as users build them.
func buildBinary(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// proc is one long-running child process of the suite — a writer, a
// projector or the broker — that the nemesis kills, stops and starts
// again. Its output, over every incarnation, goes to one log file.
//
// Each incarnation runs in a process group of its own and gets SIGKILL
// should the test process die first (a panic, a timeout), so no child
// outlives the test.
type proc struct {
	name    string
	bin     string
	args    []string
	env     []string
	logPath string
	// ready says when a new incarnation serves, given its first line of
	// output; nil accepts any first line.
	ready func(first string) error

	urlMu   sync.Mutex // not mu: start holds mu while the ready check sets the address
	address string     // the current incarnation's http://host:port

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	starts  int  // incarnations so far
	paused  bool // SIGSTOPped
	logFile *os.File
}

// startTimeout bounds the wait for a process to print its first line and
// become ready.
const startTimeout = 60 * time.Second

// start runs a new incarnation and waits until it is ready.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.exited: // it exited by itself
			p.cmd = nil
		default:
			return fmt.Errorf("%s is already running", p.name)
		}
	}
	if p.logFile == nil {
		f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		p.logFile = f
	}
	p.starts++
	fmt.Fprintf(p.logFile, "=== chaos: %s start %d at %s\n", p.name, p.starts, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stderr = p.logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	first := make(chan string, 1)
	logFile := p.logFile
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		logFile.WriteString(line)
		first <- strings.TrimSpace(line)
		io.Copy(logFile, r)
		cmd.Wait() // after the last read, as os/exec requires
		fmt.Fprintf(logFile, "=== chaos: %s exited (%v) at %s\n", p.name, cmd.ProcessState, time.Now().Format(time.RFC3339Nano))
		close(exited)
	}()
	p.cmd, p.exited, p.paused = cmd, exited, false
	select {
	case line := <-first:
		if line == "" {
			<-exited
			p.cmd = nil
			return fmt.Errorf("%s exited as it started", p.name)
		}
		if p.ready != nil {
			if err := p.ready(line); err != nil {
				p.killLocked(syscall.SIGKILL)
				return fmt.Errorf("%s: %w", p.name, err)
			}
		}
		return nil
	case <-time.After(startTimeout):
		p.killLocked(syscall.SIGKILL)
		return fmt.Errorf("%s printed nothing within %s", p.name, startTimeout)
	}
}

// kill sends sig to the process group and waits for the process to exit
// (SIGKILL also ends a stopped process). It returns false when the process
// was not running.
func (p *proc) kill(sig syscall.Signal) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killLocked(sig)
}

func (p *proc) killLocked(sig syscall.Signal) bool {
	if p.cmd == nil {
		return false
	}
	syscall.Kill(-p.cmd.Process.Pid, sig)
	if p.paused && sig != syscall.SIGKILL {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGCONT)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
	p.cmd, p.paused = nil, false
	return true
}

func (p *proc) setURL(u string) {
	p.urlMu.Lock()
	defer p.urlMu.Unlock()
	p.address = u
}

// url is where the current (or last) incarnation serves HTTP.
func (p *proc) url() string {
	p.urlMu.Lock()
	defer p.urlMu.Unlock()
	return p.address
}

// pause stops the process group with SIGSTOP.
func (p *proc) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !p.paused {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGSTOP)
		p.paused = true
	}
}

// resume continues a paused process.
func (p *proc) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.paused {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGCONT)
		p.paused = false
	}
}

// running reports whether an incarnation runs (stopped or not).
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// incarnation is the number of the current (or last) incarnation.
func (p *proc) incarnation() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// close kills the process and closes its log.
func (p *proc) close() {
	p.kill(syscall.SIGKILL)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.logFile != nil {
		p.logFile.Close()
		p.logFile = nil
	}
}

// tail returns the last n lines of a log file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort returns a TCP port on 127.0.0.1, free a moment ago, for a
// listener that must come back on the same port after a restart (the
// broker, PostgreSQL, a proxy). It is below the kernel's range of
// ephemeral ports, so that no outgoing connection takes it while its
// listener is down.
func freePort(t *testing.T) int {
	t.Helper()
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	for range 1000 {
		port := 10000 + rand.IntN(max(lo-10000, 1))
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatalf("no free port below %d", lo)
	return 0
}

// poll calls cond every interval until it returns nil or the deadline
// passes, and returns cond's last error then.
func poll(within, interval time.Duration, cond func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(interval)
	}
}

var errNotYet = errors.New("not yet")
