package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// writerProcess is a `writer serve` started for a benchmark.
type writerProcess struct {
	cmd  *exec.Cmd
	addr string
	dir  string
}

// startWriter builds cmd/writer, migrates schema, registers the example
// schemas and serves on a free loopback port, with extra settings
// ("NAME=value") and flags ("--flag=value").
func startWriter(ctx context.Context, url, schema string, log io.Writer, extra ...string) (*writerProcess, error) {
	dir, err := os.MkdirTemp("", "strata-bench-")
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(dir, "writer")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/writer").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the writer: %v\n%s", err, out)
	}
	env := append(os.Environ(), "STRATA_DATABASE_URL="+url, "STRATA_DATABASE_SCHEMA="+schema, "STRATA_LOG_LEVEL=warn")
	args := []string{"serve", "--http-addr", "127.0.0.1:0"}
	for _, x := range extra {
		if strings.HasPrefix(x, "--") {
			args = append(args, x)
		} else {
			env = append(env, x)
		}
	}
	for _, args := range [][]string{{"migrate"}, {"schemas", "apply"}} {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("writer %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr = log
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &writerProcess{cmd: cmd, dir: dir}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "writer listening on http://") {
		w.stop()
		return nil, fmt.Errorf("the writer did not start: %q %v", line, err)
	}
	w.addr = strings.TrimSpace(strings.TrimPrefix(line, "writer listening on "))
	return w, nil
}

// peakRSS returns the writer's peak resident memory.
func (w *writerProcess) peakRSS() (int64, error) { return processPeakRSS(w.cmd.Process.Pid) }

// processPeakRSS returns a process's peak resident memory, from /proc.
func processPeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

func (w *writerProcess) stop() {
	w.cmd.Process.Signal(syscall.SIGTERM)
	w.cmd.Wait()
	os.RemoveAll(w.dir)
}

// httpAppendOp appends one OrderItemAdded per request to the worker's
// stream at its exact version, as a service would, each worker on a
// keep-alive connection of its own.
func httpAppendOp(clients []*leanClient, st *streamsOf) op {
	prefix := []byte(`{"expectedVersion": `)
	suffix := []byte(fmt.Sprintf(`, "events": [{"type": "OrderItemAdded", "data": {"orderId": "a1b2c3d4",
		"itemId": "widget-x", "quantity": 2, "price": 15.99, "timestamp": "2023-10-27T10:01:30Z"},
		"metadata": {"correlationId": %q, "causationId": %q}}]}`, benchEvent.Metadata.CorrelationID, benchEvent.Metadata.CausationID))
	return func(ctx context.Context, w int) (int, error) {
		body := append(strconv.AppendInt(append([]byte{}, prefix...), st.versions[w], 10), suffix...)
		status, resp, err := clients[w].post("/v1/streams/"+st.ids[w].String()+"/events", body)
		if err != nil {
			return 0, err
		}
		if status != http.StatusCreated {
			return 0, fmt.Errorf("append: %d %s", status, bytes.TrimSpace(resp))
		}
		var res struct{ LastVersion int64 }
		if err := json.Unmarshal(resp, &res); err != nil {
			return 0, err
		}
		st.versions[w] = res.LastVersion
		return 1, nil
	}
}

func benchHTTP(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	s, err := openBenchStore(ctx, url, "bench_http", 64)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := rawTable(ctx, s); err != nil {
		return err
	}
	// The API alone: the relay's cost is measured by the relay group.
	writer, err := startWriter(ctx, url, "bench_http", log, "--relay=false")
	if err != nil {
		return err
	}
	defer writer.stop()

	const workers = 64
	clients, closeClients, err := dialLeanClients(writer.addr, workers, "")
	if err != nil {
		return err
	}
	defer closeClients()
	name := fmt.Sprintf("HTTP append 1 event, %d clients (events/s)", workers)
	fmt.Fprintf(log, "  %s ...\n", name)
	p, err := compare(ctx, cfg.rounds, workers, cfg.duration,
		httpAppendOp(clients, newStreams("http", workers)), rawInsertOp(s, newStreams("http", workers), 1))
	if err != nil {
		return err
	}
	rss, err := writer.peakRSS()
	if err != nil {
		return err
	}
	r := p.ratio()
	t.add(row{
		name:    name,
		ours:    fmt.Sprintf("%s p50 %s p99 %s", perSecond(median(p.ours)), ms(percentile(p.oursLat, 0.5)), ms(percentile(p.oursLat, 0.99))),
		base:    perSecond(median(p.base)) + " (one-row INSERTs)",
		ratio:   fmt.Sprintf("%.2f", r),
		target:  ">= 0.70",
		verdict: verdict(r >= 0.7),
	})
	t.add(row{
		name:    "writer peak RSS under that load",
		ours:    fmt.Sprintf("%.0f MB", float64(rss)/(1<<20)),
		base:    "",
		ratio:   "",
		target:  "<= 150 MB",
		verdict: verdict(rss <= 150<<20),
	})
	return nil
}
