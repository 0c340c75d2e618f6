package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/storetest"
)

// cutProxy forwards TCP connections to PostgreSQL and, when armed, cuts
// the next one that carries a query, in one of two ways.
type cutProxy struct {
	ln     net.Listener
	target string

	ownKeys bool // hand out a process id of its own, as a pooler does

	mu        sync.Mutex
	mode      cutMode
	tag       string        // loseAnswer cuts only this command tag, when set
	cut       chan struct{} // closed when the armed cut happened
	abandoned bool
}

type cutMode int

const (
	pass cutMode = iota
	// loseAnswer lets the server answer, and commit, then drops the
	// answer at its ReadyForQuery and closes both sides.
	loseAnswer
	// abandon closes the client's side as soon as the client has sent a
	// query, and leaves the server process running it. Cancel requests
	// (which pgx sends, best effort, when a connection breaks) do not get
	// through either, as in a network failure.
	abandon
)

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go p.serve()
	return p
}

func (p *cutProxy) arm(m cutMode) <-chan struct{} { return p.armTag(m, "") }

// armTag arms a cut that loseAnswer makes only on an answer whose command
// tag is tag ("INSERT 0 5"), letting other answers through.
func (p *cutProxy) armTag(m cutMode, tag string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode, p.tag, p.cut = m, tag, make(chan struct{})
	p.abandoned = p.abandoned || m == abandon
	return p.cut
}

// take returns the armed mode, once.
func (p *cutProxy) take(want cutMode) (chan struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode != want {
		return nil, false
	}
	p.mode = pass
	return p.cut, true
}

func (p *cutProxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		go p.clientToServer(client, server)
		go p.serverToClient(server, client)
	}
}

// clientToServer copies the client's messages; an armed abandon cuts the
// client after forwarding the Sync that ends an Execute (not the one that
// ends preparing a statement).
func (p *cutProxy) clientToServer(client, server net.Conn) {
	r := messages{r: client, startup: true}
	executed := false
	for first := true; ; first = false {
		msg, err := r.next()
		if err != nil {
			client.Close()
			server.Close()
			return
		}
		if first && isCancelRequest(msg) && p.dropsCancels() {
			client.Close()
			server.Close()
			return
		}
		if _, err := server.Write(msg); err != nil {
			client.Close()
			return
		}
		if msg[0] == 'E' {
			executed = true
		}
		if msg[0] == 'S' && executed {
			executed = false
			if cut, ok := p.take(abandon); ok {
				client.Close() // the server process keeps running the query
				close(cut)
				return
			}
		}
	}
}

func isCancelRequest(startup []byte) bool {
	return len(startup) >= 8 && binary.BigEndian.Uint32(startup[4:8]) == 80877102
}

// dropsCancels reports whether cancel requests are being dropped: from an
// abandon on, for the rest of the proxy's life.
func (p *cutProxy) dropsCancels() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.abandoned
}

// serverToClient copies the server's messages. An armed loseAnswer holds
// each answer back until its ReadyForQuery: an answer with an INSERT's
// CommandComplete (the statement committed at the Sync before ReadyForQuery)
// is dropped and both sides closed; any other answer (preparing the
// statement, say) is passed on.
func (p *cutProxy) serverToClient(server, client net.Conn) {
	r := messages{r: server}
	var held [][]byte
	inserted := false
	for {
		msg, err := r.next()
		if err != nil {
			client.Close()
			return
		}
		p.mu.Lock()
		armed := p.mode == loseAnswer
		p.mu.Unlock()
		if msg[0] == 'K' && p.ownKeys && len(msg) >= 9 {
			// BackendKeyData: PgBouncer, pgcat and the like give each
			// client a process id and key of their own making.
			binary.BigEndian.PutUint32(msg[5:9], ^binary.BigEndian.Uint32(msg[5:9]))
		}
		if !armed && held == nil {
			if _, err := client.Write(msg); err != nil {
				server.Close()
				return
			}
			continue
		}
		held = append(held, msg)
		if tag := strings.TrimRight(string(msg[5:]), "\x00"); msg[0] == 'C' && strings.HasPrefix(tag, "INSERT") {
			p.mu.Lock()
			inserted = p.tag == "" || p.tag == tag
			p.mu.Unlock()
		}
		if msg[0] != 'Z' {
			continue
		}
		if inserted {
			if cut, ok := p.take(loseAnswer); ok {
				client.Close()
				server.Close()
				close(cut)
				return
			}
		}
		for _, m := range held {
			if _, err := client.Write(m); err != nil {
				server.Close()
				return
			}
		}
		held, inserted = nil, false
	}
}

// messages reads PostgreSQL protocol messages: a type byte and a length,
// except the client's first (startup) message, which has no type byte.
type messages struct {
	r       io.Reader
	startup bool
}

func (m *messages) next() ([]byte, error) {
	if m.startup {
		var hdr [4]byte
		if _, err := io.ReadFull(m.r, hdr[:]); err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		body := make([]byte, n)
		copy(body, hdr[:])
		if _, err := io.ReadFull(m.r, body[4:]); err != nil {
			return nil, err
		}
		// An SSL or GSS request is answered before the real startup.
		if code := binary.BigEndian.Uint32(body[4:8]); code != 80877103 && code != 80877104 && code != 80877102 {
			m.startup = false
		}
		return body, nil
	}
	var hdr [5]byte
	if _, err := io.ReadFull(m.r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	msg := make([]byte, 1+n)
	copy(msg, hdr[:])
	if _, err := io.ReadFull(m.r, msg[5:]); err != nil {
		return nil, err
	}
	return msg, nil
}

// proxiedStore opens a second store on s's tables through a cutProxy.
func proxiedStore(t *testing.T, s *Store) (*Store, *cutProxy) {
	return proxiedStoreVia(t, s, func(p *cutProxy) {})
}

// proxiedStoreVia opens a second store on s's tables through a cutProxy
// that setup has prepared.
func proxiedStoreVia(t *testing.T, s *Store, setup func(*cutProxy)) (*Store, *cutProxy) {
	u, err := url.Parse(harness.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newCutProxy(t, u.Host)
	setup(p)
	u.Host = p.ln.Addr().String()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	ps, err := Open(ctx, u.String(), Options{Schema: s.schema, MaxConns: 2, SettleTimeout: 10 * time.Second, KnownVersions: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ps.Close)
	if err := ps.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	return ps, p
}

// Behind a connection pooler, a connection's process id is the pooler's,
// and the server process that runs an append may be another than the one
// the connection started on: settle would end and wait for the wrong
// process, or none, and could report failed an append still running. A
// store behind one refuses appends, before sending anything; it still
// reads.
func TestAStoreBehindAConnectionPoolerRefusesAppends(t *testing.T) {
	s := newStore(t, Options{})
	for _, slots := range []int{DefaultGroupSlots, -1} {
		ps, _ := proxiedStoreVia(t, s, func(p *cutProxy) { p.ownKeys = true })
		if slots < 0 {
			ps.groups = nil
		}
		stream := eventstore.MustParseStreamID(fmt.Sprintf("Order-pooled%d", slots))
		for _, events := range [][]eventstore.EventData{storetest.Events(1, "one"), storetest.Events(2, "two")} {
			_, err := ps.Append(ctx, stream, eventstore.Any, events)
			if !errors.Is(err, eventstore.ErrUnavailable) || !strings.Contains(err.Error(), "pooler") {
				t.Errorf("Append of %d events through a pooler (group slots %d) = %v, want unavailable, naming the pooler", len(events), slots, err)
			}
		}
		if _, err := s.ReadStream(ctx, stream, eventstore.StreamQuery{}); !errors.Is(err, eventstore.ErrStreamNotFound) {
			t.Errorf("after appends through a pooler were refused, ReadStream = %v, want not found", err)
		}
		if _, err := ps.ReadAll(ctx, "", 10); err != nil {
			t.Errorf("a read through a pooler = %v, want it served", err)
		}
	}
}

func TestAnAppendWhoseAnswerIsLostIsReportedStored(t *testing.T) {
	s := newStore(t, Options{})
	ps, proxy := proxiedStore(t, s)
	events := eventstore.AssignIDs(storetest.Events(3, "lost"))
	cut := proxy.arm(loseAnswer)
	res, err := ps.Append(ctx, eventstore.MustParseStreamID("Order-lost"), eventstore.NoStream, events)
	select {
	case <-cut:
	default:
		t.Fatalf("the proxy never cut the connection; the test did not test anything")
	}
	if err != nil {
		t.Fatalf("Append whose answer was lost after the commit = %v, want success", err)
	}
	if res.FirstVersion != 1 || res.LastVersion != 3 || res.Replayed || res.Events[0].ID != events[0].ID {
		t.Errorf("settled result = %+v, want versions 1..3, not replayed", res)
	}
	page, err := s.ReadStream(ctx, eventstore.MustParseStreamID("Order-lost"), eventstore.StreamQuery{})
	if err != nil || len(page.Events) != 3 {
		t.Errorf("stream holds %d events (%v), want 3", len(page.Events), err)
	}
}

func TestAnAbandonedAppendIsStoppedBeforeItIsReportedFailed(t *testing.T) {
	s := newStore(t, Options{})
	ps, proxy := proxiedStore(t, s)
	stream := eventstore.MustParseStreamID("Order-abandoned")

	// Hold version 1 in an open transaction, so the append blocks behind it.
	blocker := begin(t, s)
	appendInTx(t, blocker, stream.String(), storetest.Event("E", "blocker"))

	events := eventstore.AssignIDs(storetest.Events(1, "abandoned"))
	cut := proxy.arm(abandon)
	done := make(chan error, 1)
	go func() {
		_, err := ps.Append(ctx, stream, eventstore.Any, events)
		done <- err
	}()
	select {
	case <-cut:
	case <-time.After(10 * time.Second):
		t.Fatalf("the proxy never cut the connection")
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("the abandoned append did not return")
	}
	var unknown *OutcomeUnknownError
	if !errors.Is(err, eventstore.ErrUnavailable) || errors.As(err, &unknown) {
		t.Fatalf("abandoned append = %v, want a plain unavailable error: it certainly did not commit", err)
	}
	// Had the server process survived, it would now insert and commit.
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := s.ReadStream(ctx, stream, eventstore.StreamQuery{}); !errors.Is(err, eventstore.ErrStreamNotFound) {
		t.Errorf("after the blocker rolled back, ReadStream = %v; the abandoned append must never commit", err)
	}
	var alive int
	if err := s.pool.QueryRow(context.Background(), "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'WITH b AS%'").Scan(&alive); err != nil || alive != 0 {
		t.Errorf("%d server processes still run an append (%v)", alive, err)
	}
}
