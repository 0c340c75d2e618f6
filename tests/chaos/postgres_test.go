package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/harness"
)

// pgServer is the suite's own PostgreSQL cluster, which the nemesis
// restarts. The postmaster is a child of the test process (so that it dies
// with it), and a restart is what pg_ctl restart does: pg_ctl stop -m fast
// sends the postmaster SIGINT (clients disconnected, open transactions
// rolled back, a checkpoint) and -m immediate sends SIGQUIT (every process
// quits at once, and the next start recovers from the WAL, as after a
// crash); then the server starts again on the same port and data.
//
// As in the harness, fsync is off: a killed or restarted server keeps
// everything it acknowledged (the WAL is written before a commit is
// answered), and only a crash of the machine itself could lose it.
type pgServer struct {
	bin, dir string
	port     int
	log      *os.File
	cred     *syscall.Credential

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// newPGServer initialises a cluster in a new directory and starts it on
// port, logging to logPath.
func newPGServer(ctx context.Context, port int, logPath string) (*pgServer, error) {
	bin, err := harness.PostgresBinDir()
	if err != nil {
		return nil, err
	}
	// Not under the test's temporary directory: as root the server runs
	// as the postgres user, which cannot enter it.
	dir, err := os.MkdirTemp("", "strata-chaos-pg-")
	if err != nil {
		return nil, err
	}
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	s := &pgServer{bin: bin, dir: dir, port: port, log: log}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root, so PostgreSQL must run as the user postgres, which does not exist (install the postgresql package): %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
	}
	initdb := s.command(ctx, "initdb", "-D", filepath.Join(dir, "data"), "-U", "strata", "-A", "trust", "-E", "UTF8",
		"--no-locale", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	if _, err := s.start(ctx); err != nil {
		return nil, err
	}
	admin := fmt.Sprintf("postgres://strata@127.0.0.1:%d/postgres?sslmode=disable", port)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE strata"); err != nil {
		return nil, err
	}
	return s, nil
}

// URL is the database's address, straight to the server (no proxy).
func (s *pgServer) URL() string {
	return fmt.Sprintf("postgres://strata@127.0.0.1:%d/strata?sslmode=disable", s.port)
}

func (s *pgServer) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	// Pdeathsig is applied after the credential change, so it survives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	return cmd
}

// start starts the postmaster and returns when it accepts connections.
func (s *pgServer) start(ctx context.Context) (accepted time.Time, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	settings := []string{
		"listen_addresses=127.0.0.1",
		"unix_socket_directories=" + s.dir,
		"max_connections=300",
		"shared_buffers=128MB",
		"max_wal_size=4GB",
		"fsync=off",
		"full_page_writes=off",
		"log_min_messages=warning",
		"log_min_error_statement=panic",
	}
	args := []string{"-D", filepath.Join(s.dir, "data"), "-p", strconv.Itoa(s.port)}
	for _, kv := range settings {
		args = append(args, "-c", kv)
	}
	cmd := s.command(context.Background(), "postgres", args...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	fmt.Fprintf(s.log, "=== chaos: postgres start at %s\n", time.Now().Format(time.RFC3339Nano))
	if err := cmd.Start(); err != nil {
		return time.Time{}, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	url := fmt.Sprintf("postgres://strata@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=2", s.port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(cctx, url)
		cancel()
		if err == nil {
			accepted = time.Now()
			conn.Close(context.Background())
			return accepted, nil
		}
		select {
		case <-exited:
			s.cmd = nil
			return time.Time{}, fmt.Errorf("postgres exited while starting: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("postgres does not accept connections 60s after its start: %v", err)
		}
	}
}

// stop stops the postmaster with sig (SIGINT: fast, SIGQUIT: immediate)
// and waits until it has exited and its port is free.
func (s *pgServer) stop(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
}

// close stops the server and removes its directory.
func (s *pgServer) close() {
	s.stop(syscall.SIGQUIT)
	s.log.Close()
	os.RemoveAll(s.dir)
}
