package httpapi

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/postgres"
)

// TestAppendsOverADatabaseRestart kills PostgreSQL under HTTP appends and
// starts it again: each append answers, within a bounded time, either 201
// and is stored, or 503 unavailable and is absent unless the answer says
// its outcome is unknown; the API recovers by itself when the database
// returns.
func TestAppendsOverADatabaseRestart(t *testing.T) {
	cluster := harness.SharedCluster(t)
	t.Cleanup(func() { cluster.Start(context.Background()) }) // no-op when running
	a := newAPI(t, Options{Timeout: 5 * time.Second})

	type result struct {
		id      string
		status  int
		code    string
		outcome string
		elapsed time.Duration
	}
	var mu sync.Mutex
	var results []result
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := eventstore.NewUUIDv7().String()
				body := appendBody(-1, strings.Replace(orderCreated, `{"type"`, `{"id": "`+id+`", "type"`, 1))
				start := time.Now()
				resp, err := http.Post(a.url+fmt.Sprintf("/v1/streams/Order-r%d/events", w), "application/json", strings.NewReader(body))
				if err != nil {
					t.Errorf("POST: %v", err)
					return
				}
				var e struct{ Error errorBody }
				json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				mu.Lock()
				results = append(results, result{id, resp.StatusCode, e.Error.Code, e.Error.Outcome, time.Since(start)})
				mu.Unlock()
				if resp.StatusCode != http.StatusCreated {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(time.Second)
	cluster.Kill()
	time.Sleep(2 * time.Second) // appends meanwhile must fail fast, not hang
	if err := cluster.Start(context.Background()); err != nil {
		t.Fatalf("restart: %v", err)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	stored := map[string]bool{}
	var cursor eventstore.Cursor
	for {
		page, err := a.store.ReadAll(context.Background(), cursor, eventstore.MaxReadLimit)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			stored[e.ID.String()] = true
		}
		cursor = page.Next
		if len(page.Events) == 0 {
			break
		}
	}
	var ok, unavailable, afterRecovery int
	var slowest time.Duration
	for i, r := range results {
		switch {
		case r.status == http.StatusCreated && !stored[r.id]:
			t.Errorf("append %s answered 201 but is not stored", r.id)
		case r.status == http.StatusCreated:
			ok++
		case r.status == http.StatusServiceUnavailable && r.code == "unavailable":
			unavailable++
			slowest = max(slowest, r.elapsed)
			if stored[r.id] && r.outcome != "unknown" {
				t.Errorf("append %s answered 503 but is stored", r.id)
			}
		default:
			t.Errorf("append %s answered %d %s", r.id, r.status, r.code)
		}
		if r.status == http.StatusCreated && i > len(results)-16 {
			afterRecovery++
		}
	}
	if unavailable == 0 {
		t.Fatalf("no append failed: the outage was not observed")
	}
	if slowest > 25*time.Second {
		t.Errorf("the slowest failed append took %s; failures must come within the request timeout and the settle bound", slowest)
	}
	if afterRecovery == 0 {
		t.Errorf("no append succeeded after the database came back")
	}
	t.Logf("%d stored, %d unavailable (slowest %s), %d of the last appends stored", ok, unavailable, slowest, afterRecovery)
}

// An append whose outcome the store could not learn is not answered as if
// nothing was stored, whatever the cause it carries (a deadline, say): the
// body marks the outcome unknown.
func TestAnUnknownOutcomeIsNotDescribedAsNothingStored(t *testing.T) {
	for _, cause := range []error{fmt.Errorf("timeout: %w", context.DeadlineExceeded), io.ErrUnexpectedEOF} {
		err := &postgres.OutcomeUnknownError{Stream: eventstore.MustParseStreamID("Order-1"), Timeout: 15 * time.Second, Cause: cause}
		status, body := describe(err)
		if status != http.StatusServiceUnavailable || body.Code != eventstore.CodeUnavailable || body.Outcome != "unknown" || strings.Contains(body.Message, "nothing was stored") {
			t.Errorf("describe(unknown outcome, cause %v) = %d %+v; want 503 unavailable, outcome unknown, not saying nothing was stored", cause, status, body)
		}
	}
	status, body := describe(context.DeadlineExceeded)
	if status != http.StatusServiceUnavailable || body.Outcome != "" || !strings.Contains(body.Message, "nothing was stored") {
		t.Errorf("describe(deadline) = %d %+v; want 503 saying nothing was stored, with no outcome", status, body)
	}
}

// TestAnAppendWhoseOutcomeCannotBeLearntSaysSo cuts the writer off from
// PostgreSQL once an append's statement is sent, for longer than the settle
// timeout: the request's deadline passes mid-statement, settle cannot ask,
// and the answer must say that the outcome is unknown.
func TestAnAppendWhoseOutcomeCannotBeLearntSaysSo(t *testing.T) {
	direct := newPostgresStore(t)
	proxy, proxied := newFreezeProxy(t, harness.PostgresURL(t))
	store, err := postgres.Open(context.Background(), proxied, postgres.Options{Schema: direct.Schema(), SettleTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	t.Cleanup(proxy.close) // before the store closes, which would wait on frozen connections
	srv := httptest.NewServer(New(store, loadTestSchemas(t), Options{Timeout: time.Second}).Handler())
	t.Cleanup(srv.Close)
	a := &api{t: t, url: srv.URL, store: store}

	if r := a.do("POST", "/v1/streams/Order-warm/events", appendBody(-1, orderCreated)); r.status != http.StatusCreated {
		t.Fatalf("the first append: %d %s", r.status, r.body)
	}
	frozen := proxy.freezeAtNextStatement()
	r := a.do("POST", "/v1/streams/Order-cut/events", appendBody(-1, orderCreated, itemAdded))
	if !closed(frozen) {
		t.Fatalf("the proxy never cut the writer off; the test tested nothing")
	}
	e := r.errorOf()
	if r.status != http.StatusServiceUnavailable || e.Code != eventstore.CodeUnavailable || e.Outcome != "unknown" || strings.Contains(e.Message, "nothing was stored") {
		t.Errorf("an append whose outcome could not be learnt: %d %s; want 503 unavailable with outcome unknown, not saying nothing was stored", r.status, r.body)
	}
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// freezeProxy forwards TCP connections to PostgreSQL until it is frozen:
// from then on it forwards nothing more, in either direction, and holds
// new connections without connecting them, as a network that stops
// delivering does. It thaws, closing everything, when the test ends.
type freezeProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	armed  bool
	frozen chan struct{} // closed when frozen
	conns  []net.Conn
}

// newFreezeProxy starts a proxy to the database at url and returns it
// with the URL that goes through it.
func newFreezeProxy(t *testing.T, url string) (*freezeProxy, string) {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, target: u.Host, frozen: make(chan struct{})}
	t.Cleanup(p.close)
	go p.serve()
	u.Host = ln.Addr().String()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	return p, u.String()
}

// freezeAtNextStatement freezes the proxy when a client next binds a
// statement to run, instead of forwarding that Bind; the returned channel
// is closed then.
func (p *freezeProxy) freezeAtNextStatement() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = true
	return p.frozen
}

func (p *freezeProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *freezeProxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *freezeProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(client)
		if closed(p.frozen) {
			continue // held: never connected
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.track(server)
		go p.clientToServer(client, server)
		go func() {
			io.Copy(&frozenWriter{p, client}, server)
			client.Close()
		}()
	}
}

// clientToServer copies the client's messages; an armed proxy freezes at
// the first Bind.
func (p *freezeProxy) clientToServer(client, server net.Conn) {
	defer server.Close()
	r := bufio.NewReader(client)
	for first := true; ; first = false {
		var typ byte
		if !first {
			var err error
			if typ, err = r.ReadByte(); err != nil {
				return
			}
		}
		var n [4]byte
		if _, err := io.ReadFull(r, n[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint32(n[:])-4)
		if _, err := io.ReadFull(r, msg); err != nil {
			return
		}
		p.mu.Lock()
		if p.armed && typ == 'B' {
			p.armed = false
			close(p.frozen)
		}
		p.mu.Unlock()
		if closed(p.frozen) {
			continue // swallowed
		}
		var out []byte
		if !first {
			out = append(out, typ)
		}
		out = append(append(out, n[:]...), msg...)
		if _, err := server.Write(out); err != nil {
			return
		}
	}
}

// frozenWriter drops what the server sends once the proxy is frozen.
type frozenWriter struct {
	p *freezeProxy
	w io.Writer
}

func (f *frozenWriter) Write(b []byte) (int, error) {
	if closed(f.p.frozen) {
		return len(b), nil
	}
	return f.w.Write(b)
}
