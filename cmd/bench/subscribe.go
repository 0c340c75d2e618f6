package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// The subscribe group's tokens: one writer's for the appends, and readers'
// with principals of their own, because a writer holds at most
// httpapi.DefaultMaxSubscriptionsPerToken (1,000) subscriptions per
// principal and the group opens 1,000 idle ones.
const (
	subscribeWriterToken = "bench-writer-token-0000"
	subscribeReaders     = 4
)

func subscribeReaderToken(i int) string { return fmt.Sprintf("bench-reader-token-%04d", i) }

// benchSubscribe measures live subscriptions over real connections to a
// writer process: how long an appended event takes to reach 100 SSE
// subscribers at a steady 1,000 events/s, beside the appends' own round
// trip; and append throughput with 1,000 idle subscribers open, beside
// none.
func benchSubscribe(ctx context.Context, url string, cfg benchConfig, t *table, log io.Writer) error {
	s, err := openBenchStore(ctx, url, "bench_subscribe", 8)
	if err != nil {
		return err
	}
	s.Close()
	tokens := []string{subscribeWriterToken + ":writer"}
	for i := range subscribeReaders {
		tokens = append(tokens, fmt.Sprintf("%s:reader:bench-reader-%d", subscribeReaderToken(i), i))
	}
	writer, err := startWriter(ctx, url, "bench_subscribe", log, "--relay=false", "STRATA_API_TOKENS="+strings.Join(tokens, ","))
	if err != nil {
		return err
	}
	defer writer.stop()
	if err := subscribeLatency(ctx, writer.addr, cfg, t, log); err != nil {
		return err
	}
	return idleSubscribers(ctx, writer.addr, cfg, t, log)
}

// subscribeLatency opens 100 subscriptions to $all, appends at a steady
// 1,000 events/s from 10 clients, and measures each event from just before
// its append is sent to when each subscriber has parsed it, beside the
// appends' round trips.
func subscribeLatency(ctx context.Context, addr string, cfg benchConfig, t *table, log io.Writer) error {
	const rate, workers, subscribers = 1000, 10, 100
	duration := 5 * cfg.duration
	name := fmt.Sprintf("append → SSE at %d events/s, %d subscribers to $all (latency)", rate, subscribers)
	fmt.Fprintf(log, "  %s, for %s ...\n", name, duration)

	clients, closeClients, err := dialLeanClients(addr, workers, subscribeWriterToken)
	if err != nil {
		return err
	}
	defer closeClients()
	st := newStreams("sub", workers)
	appendOne := httpAppendOp(clients, st)
	// sent[w][v] is when the append of version v of worker w's stream was
	// sent, in Unix nanoseconds.
	perWorker := int(duration.Seconds()+1)*rate/workers + 100
	sent := make([][]atomic.Int64, workers)
	for w := range sent {
		sent[w] = make([]atomic.Int64, perWorker)
	}

	var mu sync.Mutex
	var delivered []time.Duration
	var warm sync.WaitGroup
	warm.Add(subscribers)
	g, gctx := errgroup.WithContext(ctx)
	subs := make([]*leanClient, 0, subscribers)
	defer func() {
		for _, c := range subs {
			c.close()
		}
	}()
	for i := range subscribers {
		c, err := subscribeSSE(addr, "/v1/events/subscribe", subscribeReaderToken(i%subscribeReaders))
		if err != nil {
			return err
		}
		subs = append(subs, c)
		g.Go(func() error {
			var mine []time.Duration
			defer func() {
				mu.Lock()
				delivered = append(delivered, mine...)
				mu.Unlock()
			}()
			warming := true
			return readSSE(c, func(data []byte) {
				now := time.Now().UnixNano()
				w, v, ok := benchEventOf(data, st)
				switch {
				case !ok && warming: // the warm-up event: this subscriber is live
					warming = false
					warm.Done()
				case ok && v < int64(perWorker):
					if at := sent[w][v].Load(); at != 0 {
						mine = append(mine, time.Duration(now-at))
					}
				}
			})
		})
	}
	// Every subscriber is live once it has the warm-up event, on a stream
	// of the same category that the measured events do not use.
	warmUp := httpAppendOp(clients[:1], newStreams("warm", 1))
	if _, err := warmUp(ctx, 0); err != nil {
		return err
	}
	if err := waitGroupFor(&warm, 10*time.Second); err != nil {
		return fmt.Errorf("subscribers: %w", err)
	}

	roundTrips := make([][]time.Duration, workers)
	err = paced(gctx, rate, workers, duration, func(ctx context.Context, w int) error {
		t0 := time.Now()
		if st.versions[w]+1 < int64(perWorker) {
			sent[w][st.versions[w]+1].Store(t0.UnixNano())
		}
		if _, err := appendOne(ctx, w); err != nil {
			return err
		}
		roundTrips[w] = append(roundTrips[w], time.Since(t0))
		return nil
	})
	if err != nil {
		return err
	}
	var appended int
	var rtt []time.Duration
	for w := range roundTrips {
		appended += len(roundTrips[w])
		rtt = append(rtt, roundTrips[w]...)
	}
	time.Sleep(time.Second) // the last events on their way
	for _, c := range subs {
		c.close()
	}
	if err := g.Wait(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	if len(delivered) != appended*subscribers {
		return fmt.Errorf("%d subscribers received %d events in all, not %d × %d appended", subscribers, len(delivered), subscribers, appended)
	}
	t.add(latencyRow(name, delivered, thousands(float64(len(delivered)))+" deliveries", rtt, "the appends' round trip", 20*time.Millisecond))
	return nil
}

// idleSubscribers measures append throughput as the http group does, 64
// clients, in rounds that alternate between no subscriptions and 1,000
// idle ones: subscriptions to streams of the appended category that get
// no events, so that each append wakes their category's feed.
func idleSubscribers(ctx context.Context, addr string, cfg benchConfig, t *table, log io.Writer) error {
	const workers, idle = 64, 1000
	name := fmt.Sprintf("HTTP append 1 event, %d clients, with %d idle subscribers (events/s)", workers, idle)
	fmt.Fprintf(log, "  %s ...\n", name)
	clients, closeClients, err := dialLeanClients(addr, workers, subscribeWriterToken)
	if err != nil {
		return err
	}
	defer closeClients()
	appendOne := httpAppendOp(clients, newStreams("idle", workers))
	p := &pair{}
	for range cfg.rounds {
		none, _, err := throughput(ctx, workers, cfg.duration, appendOne)
		if err != nil {
			return fmt.Errorf("without subscribers: %w", err)
		}
		closeIdle, err := openIdle(ctx, addr, idle)
		if err != nil {
			return err
		}
		with, _, err := throughput(ctx, workers, cfg.duration, appendOne)
		closeIdle()
		if err != nil {
			return fmt.Errorf("with subscribers: %w", err)
		}
		if err := waitUntil(ctx, 10*time.Second, "the idle subscriptions to close", func() (bool, error) {
			n, err := openSubscriptions(addr)
			return n == 0, err
		}); err != nil {
			return err
		}
		p.ours, p.base = append(p.ours, with), append(p.base, none)
	}
	t.add(ratioRow(name, p, "no subscribers", 0.9))
	return nil
}

// openIdle opens n subscriptions to streams no one appends to, reading
// and dropping what they get (heartbeats), and waits until the writer
// counts them all open.
func openIdle(ctx context.Context, addr string, n int) (closeAll func(), err error) {
	var mu sync.Mutex
	var conns []*leanClient
	closeAll = func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.close()
		}
	}
	g := errgroup.Group{}
	g.SetLimit(32)
	for i := range n {
		g.Go(func() error {
			c, err := subscribeSSE(addr, fmt.Sprintf("/v1/streams/Bench-quiet-%d/subscribe", i), subscribeReaderToken(i%subscribeReaders))
			if err != nil {
				return err
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go io.Copy(io.Discard, c.br)
			return nil
		})
	}
	err = g.Wait()
	if err == nil {
		err = waitUntil(ctx, 10*time.Second, "the idle subscriptions to open", func() (bool, error) {
			open, err := openSubscriptions(addr)
			return open == n, err
		})
	}
	if err != nil {
		closeAll()
		return nil, err
	}
	return closeAll, nil
}

// subscribeSSE opens a subscription at path and reads its head; the
// client's reader is then at the start of the event stream's body.
func subscribeSSE(addr, path, token string) (*leanClient, error) {
	c, err := dialLean(addr)
	if err != nil {
		return nil, err
	}
	c.token = token
	c.header("GET", path)
	c.bw.WriteString("Accept: text/event-stream\r\n\r\n")
	err = c.bw.Flush()
	if err == nil {
		var status int
		if status, _, err = c.readHead(); err == nil && status != http.StatusOK {
			err = fmt.Errorf("subscribe %s: status %d", path, status)
		}
	}
	if err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// readSSE calls f with the data of each message of c's event stream (a
// chunked body) until the stream ends or fails; the data is valid only
// during the call.
func readSSE(c *leanClient, f func(data []byte)) error {
	r := bufio.NewReaderSize(httputil.NewChunkedReader(c.br), 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		if data, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			f(bytes.TrimSuffix(data, []byte("\n")))
		}
	}
}

// benchEventOf finds which of st's streams an event's JSON is of, and its
// version, without decoding all of it: the subscribers share two cores
// with the writer and PostgreSQL.
func benchEventOf(data []byte, st *streamsOf) (worker int, version int64, ok bool) {
	stream, ok := jsonField(data, `"streamId":"`, '"')
	if !ok {
		return 0, 0, false
	}
	prefix := strings.TrimSuffix(st.ids[0].String(), "0")
	w, err := strconv.Atoi(strings.TrimPrefix(string(stream), prefix))
	if !strings.HasPrefix(string(stream), prefix) || err != nil || w < 0 || w >= len(st.ids) {
		return 0, 0, false
	}
	v, ok := jsonField(data, `"version":`, ',')
	if !ok {
		return 0, 0, false
	}
	version, err = strconv.ParseInt(string(v), 10, 64)
	return w, version, err == nil
}

// jsonField returns what follows key in data up to end.
func jsonField(data []byte, key string, end byte) ([]byte, bool) {
	_, rest, ok := bytes.Cut(data, []byte(key))
	if !ok {
		return nil, false
	}
	v, _, ok := bytes.Cut(rest, []byte{end})
	return v, ok
}

// openSubscriptions reads strata_subscriptions_open from the writer's
// metrics.
func openSubscriptions(addr string) (int, error) {
	resp, err := http.Get(addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "strata_subscriptions_open "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return int(f), err
		}
	}
	return 0, fmt.Errorf("no strata_subscriptions_open in the writer's metrics (%v)", sc.Err())
}

// waitGroupFor waits for wg, at most d.
func waitGroupFor(wg *sync.WaitGroup, d time.Duration) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("not ready after %s", d)
	}
}
