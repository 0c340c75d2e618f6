package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresOptions configures a throwaway cluster. The zero value suits tests.
type PostgresOptions struct {
	// Durable keeps fsync and full-page writes on, as in production. Without
	// it, commits are still written before they are acknowledged (a killed
	// server loses nothing acknowledged) but not flushed to disk: fast
	// enough for tests, and safe against anything but a machine crash.
	Durable bool
	// SharedBuffers is PostgreSQL's shared_buffers; default "256MB".
	SharedBuffers string
	// Port is the TCP port on 127.0.0.1; 0 picks a free one.
	Port int
	// Dir holds the cluster; "" makes a temporary directory that Stop
	// removes. A given Dir is kept, and an existing cluster in it reused.
	Dir string
	// Log receives the server's output; nil keeps it in Dir/postgres.log.
	Log *os.File
}

// PostgresCluster is a PostgreSQL server started from the machine's binaries
// for tests and the demo. It runs as a child of this process and is killed
// when this process dies, so a crashed test leaves no server behind.
//
// Its methods are not safe for concurrent use.
type PostgresCluster struct {
	// URL connects to the database "strata" as the superuser "strata".
	URL string

	opts    PostgresOptions
	bin     string
	dir     string
	tempDir bool
	port    int
	cred    *syscall.Credential
	cmd     *exec.Cmd
	exited  chan struct{}
	logFile *os.File
}

// StartPostgres initialises a cluster in a new directory (or reuses the
// cluster in opts.Dir), starts it and creates the database "strata".
//
// When the process runs as root, the server runs as the "postgres" user,
// because PostgreSQL refuses to run as root.
func StartPostgres(ctx context.Context, opts PostgresOptions) (_ *PostgresCluster, err error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, err
	}
	c := &PostgresCluster{opts: opts, bin: bin, dir: opts.Dir, port: opts.Port}
	if os.Geteuid() == 0 {
		if c.cred, err = postgresUser(); err != nil {
			return nil, err
		}
	}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "strata-pg-"); err != nil {
			return nil, fmt.Errorf("start postgres: %w", err)
		}
		c.tempDir = true
	} else if err := os.MkdirAll(c.dir, 0o755); err != nil {
		// 0755: the postgres user must traverse parents made here.
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	if err := c.chown(c.dir); err != nil {
		return nil, err
	}
	if _, statErr := os.Stat(filepath.Join(c.dir, "data", "PG_VERSION")); statErr != nil {
		if err := c.initdb(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// PostgresBinDir finds the PostgreSQL server binaries: $STRATA_PG_BINDIR, the
// newest /usr/lib/postgresql/N/bin, or the directory of initdb on PATH.
func PostgresBinDir() (string, error) {
	if d := os.Getenv("STRATA_PG_BINDIR"); d != "" {
		return d, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("postgresql server binaries not found: install the Debian package postgresql " +
		"(scripts/ensure-postgres does), set STRATA_PG_BINDIR, or give a database with STRATA_TEST_DATABASE_URL")
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, so PostgreSQL must run as the user postgres, which does not exist (install the postgresql package): %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (c *PostgresCluster) chown(path string) error {
	if c.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
		return fmt.Errorf("start postgres: give %s to the postgres user: %w", path, err)
	}
	return nil
}

func (c *PostgresCluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	// Pdeathsig is applied after the credential change, so it survives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	return cmd
}

func (c *PostgresCluster) initdb(ctx context.Context) error {
	data := filepath.Join(c.dir, "data")
	cmd := c.command(ctx, "initdb", "-D", data, "-U", "strata", "-A", "trust", "-E", "UTF8",
		"--no-locale", "--no-sync", "--no-instructions")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

// Start starts the server of a stopped cluster, on the same port when it
// had one, and waits until it accepts connections.
func (c *PostgresCluster) Start(ctx context.Context) error {
	if c.cmd != nil {
		return errors.New("postgres is already running")
	}
	var lastErr error
	shmDeadline := time.Now().Add(10 * time.Second)
	for attempt := 0; attempt < 5; attempt++ {
		port := c.port
		if port == 0 {
			var err error
			if port, err = freePort(); err != nil {
				return err
			}
		}
		lastErr = c.startOn(ctx, port)
		if lastErr == nil {
			c.port = port
			return nil
		}
		// After a Kill, the old server's backends may still be attached
		// to its shared memory for a moment after they were signalled.
		if strings.Contains(lastErr.Error(), "pre-existing shared memory block") && time.Now().Before(shmDeadline) {
			attempt--
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if c.port != 0 || !strings.Contains(lastErr.Error(), "in use") {
			return lastErr
		}
	}
	return lastErr
}

func (c *PostgresCluster) startOn(ctx context.Context, port int) error {
	settings := []string{
		"listen_addresses=127.0.0.1",
		"unix_socket_directories=" + c.dir,
		"max_connections=300",
		"shared_buffers=" + orDefault(c.opts.SharedBuffers, "256MB"),
		"max_wal_size=4GB",
		"log_min_messages=warning",
		"log_min_error_statement=panic",
	}
	if !c.opts.Durable {
		// Commits are still written before they are acknowledged, so a
		// killed server (a crash test) loses nothing acknowledged; only
		// the flush to disk, which guards against a machine crash, is off.
		settings = append(settings, "fsync=off", "full_page_writes=off")
	}
	args := []string{"-D", filepath.Join(c.dir, "data"), "-p", strconv.Itoa(port)}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	// The server outlives ctx: ctx bounds only the wait for it to be ready.
	cmd := c.command(context.Background(), "postgres", args...)
	logFile := c.opts.Log
	if logFile == nil {
		f, err := os.OpenFile(filepath.Join(c.dir, "postgres.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("start postgres: %w", err)
		}
		if c.logFile != nil {
			c.logFile.Close()
		}
		logFile, c.logFile = f, f
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	c.cmd, c.exited = cmd, exited

	adminURL := fmt.Sprintf("postgres://strata@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := ensureDatabase(ctx, adminURL, "strata")
		if err == nil {
			break
		}
		select {
		case <-exited:
			c.cmd = nil
			return fmt.Errorf("postgres exited while starting:\n%s", c.logTail())
		case <-ctx.Done():
			c.kill()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.kill()
			return fmt.Errorf("postgres did not accept connections within 60s: %v\n%s", err, c.logTail())
		}
	}
	c.URL = fmt.Sprintf("postgres://strata@127.0.0.1:%d/strata?sslmode=disable", port)
	return nil
}

func ensureDatabase(ctx context.Context, adminURL, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	}
	return err
}

// Port is the server's TCP port.
func (c *PostgresCluster) Port() int { return c.port }

// Dir is the directory that holds the cluster.
func (c *PostgresCluster) Dir() string { return c.dir }

// Kill stops the server at once, as a crash would (SIGKILL): open
// transactions are lost, committed ones survive.
func (c *PostgresCluster) Kill() {
	if c.cmd == nil {
		return
	}
	c.kill()
	// A killed postmaster leaves its backends to notice and exit; wait
	// until the port is free so that Start can bind it again.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && portBusy(c.port) {
		time.Sleep(20 * time.Millisecond)
	}
	os.Remove(filepath.Join(c.dir, "data", "postmaster.pid"))
}

func (c *PostgresCluster) kill() {
	syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	<-c.exited
	c.cmd = nil
}

// Shutdown stops the server cleanly (a fast shutdown), keeping its data.
func (c *PostgresCluster) Shutdown() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
		c.cmd = nil
	case <-time.After(15 * time.Second):
		c.kill()
	}
}

// Stop shuts the server down and removes a temporary directory.
func (c *PostgresCluster) Stop() {
	c.Shutdown()
	if c.logFile != nil {
		c.logFile.Close()
		c.logFile = nil
	}
	if c.tempDir {
		os.RemoveAll(c.dir)
	}
}

func (c *PostgresCluster) logTail() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portBusy(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return true
	}
	l.Close()
	return false
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
