package runner

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/projection"
)

// pollLog is a Consumer that hands out polls of one partition, each of
// perPoll records of a stream of its own, and checks the rule of
// Consumer: the records of a poll stay in hand until Release, so Release
// must come with nothing polled and not yet applied, and no poll running.
type pollLog struct {
	t        *testing.T
	polls    [][]Record
	last     int64 // the partition's last offset + 1, its end
	caughtUp bool  // End says there is nothing more after each poll

	mu       sync.Mutex
	handed   int // polls handed out
	applied  int // records applied, by the projection
	polling  bool
	ahead    int    // polls made while records were in hand
	aheadOf  []bool // for each poll handed out, whether a poll was made while its records were in hand
	releases int
}

func newPollLog(t *testing.T, polls, perPoll int, caughtUp bool) *pollLog {
	l := &pollLog{t: t, caughtUp: caughtUp}
	for i := range polls {
		var recs []Record
		for j := range perPoll {
			stream := eventstore.MustParseStreamID(fmt.Sprintf("Order-%d", i))
			recs = append(recs, Record{Topic: bookTopic, Partition: 0, Offset: l.last,
				Event: eventstore.RecordedEvent{StreamID: stream, Version: int64(j + 1), Type: "OrderCreated"}})
			l.last++
		}
		l.polls = append(l.polls, recs)
	}
	l.aheadOf = make([]bool, polls)
	return l
}

func (l *pollLog) Poll(ctx context.Context) ([]Batch, error) {
	l.mu.Lock()
	if l.polling {
		l.t.Error("Poll while another poll runs")
	}
	inHand := l.handed*len(l.polls[0]) - l.applied
	if inHand > 0 {
		l.ahead++
		l.aheadOf[l.handed-1] = true
	}
	if l.handed == len(l.polls) {
		l.mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	l.polling = true
	recs := l.polls[l.handed]
	l.mu.Unlock()
	time.Sleep(5 * time.Millisecond) // fetching
	l.mu.Lock()
	defer l.mu.Unlock()
	l.polling = false
	l.handed++
	end := l.last
	if l.caughtUp {
		end = recs[len(recs)-1].Offset + 1
	}
	return []Batch{{Topic: bookTopic, Partition: 0, Records: recs, End: end}}, nil
}

func (l *pollLog) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releases++
	if inHand := l.handed*len(l.polls[0]) - l.applied; l.polling || inHand > 0 {
		l.t.Errorf("Release with a poll running (%v) or %d records in hand", l.polling, inHand)
	}
}

func (l *pollLog) Close() {}

// apply is the projection's Apply: it counts the records applied, after
// a while in the database.
func (l *pollLog) apply(ctx context.Context, tx pgx.Tx, events []projection.Event) error {
	time.Sleep(10 * time.Millisecond)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.applied += len(events)
	return nil
}

type mapDecoder struct{}

func (mapDecoder) DecodeWire(context.Context, int, []byte, string) (any, error) {
	return map[string]any{}, nil
}

// While a poll's records commit, the runner polls and decodes the next
// ones when the partitions have more; it releases the consumer (lets a
// rebalance happen) only with nothing in hand.
func TestTheRunnerPollsAheadWhileACommitRunsAndReleasesOnlyBetweenBatches(t *testing.T) {
	for _, tt := range []struct {
		name      string
		caughtUp  bool
		wantAhead bool
	}{
		{"with a backlog, it polls ahead", false, true},
		{"caught up, it polls after releasing", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newBookFixture(t)
			l := newPollLog(t, 20, 5, tt.caughtUp)
			r := New(&projection.Projection{Name: "p", Categories: []string{"Order"}, Apply: l.apply}, f.db, nil, mapDecoder{},
				Options{Schema: f.b.name, Topic: func(string) string { return bookTopic }})
			a := r.newApplier(f.db, liveTarget(1))
			a.parts[partitionKey{bookTopic, 0}] = &partitionState{next: -1, versions: map[string]int64{}}
			f.exec("DELETE FROM projection_offsets")
			err := a.consume(context.Background(), l, func() bool { return a.parts[partitionKey{bookTopic, 0}].next == l.last })
			if err != nil {
				t.Fatalf("consume = %v", err)
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.applied != int(l.last) {
				t.Errorf("applied %d records, want %d", l.applied, l.last)
			}
			if got := l.ahead > 0; got != tt.wantAhead {
				t.Errorf("polled ahead %d times; want polls ahead: %v", l.ahead, tt.wantAhead)
			}
			if l.releases == 0 {
				t.Error("never released the consumer")
			}
		})
	}
}

// A poll decodes its records in order up to the first that fails, and
// says so: the commit decodes the rest, and no poll ahead may decode later
// records before them (an erasure among them makes the decoder forget a
// key that later records must not be read with).
func TestAPollStopsDecodingAtTheFirstFailure(t *testing.T) {
	f := newBookFixture(t)
	r := New(&projection.Projection{Name: "p", Categories: []string{"Order"}, Apply: func(context.Context, pgx.Tx, []projection.Event) error { return nil }},
		f.db, nil, mapDecoder{}, Options{Schema: f.b.name, Topic: func(string) string { return bookTopic }})
	a := r.newApplier(f.db, liveTarget(1))
	l := newPollLog(t, 1, 3, false)
	l.polls[0][1].Err = fmt.Errorf("not a record")
	p := a.poll(context.Background(), l)
	if p.err != nil {
		t.Fatal(p.err)
	}
	if !p.failed {
		t.Error("the poll does not say a record failed")
	}
	if got := []bool{p.dec[0][0].ok, p.dec[0][1].ok, p.dec[0][2].ok}; got[0] != true || got[1] || got[2] {
		t.Errorf("decoded %v, want [true false false]: the third record must wait for the commit", got)
	}
	l = newPollLog(t, 1, 3, false)
	if p := a.poll(context.Background(), l); p.failed || !p.dec[0][2].ok {
		t.Errorf("a poll that decodes whole: failed %v, last decoded %v", p.failed, p.dec[0][2].ok)
	}

	// With a backlog, the runner polls ahead of every commit but that of
	// the poll with the record that failed to decode (once: the commit
	// decodes it).
	l = newPollLog(t, 4, 3, false)
	l.polls[1][1].Event.Data = []byte("fails once")
	r = New(&projection.Projection{Name: "p", Categories: []string{"Order"}, Apply: l.apply},
		f.db, nil, &onceFailing{}, Options{Schema: f.b.name, Topic: func(string) string { return bookTopic }})
	a = r.newApplier(f.db, liveTarget(1))
	a.parts[partitionKey{bookTopic, 0}] = &partitionState{next: -1, versions: map[string]int64{}}
	f.exec("DELETE FROM projection_offsets")
	if err := a.consume(context.Background(), l, func() bool { return a.parts[partitionKey{bookTopic, 0}].next == l.last }); err != nil {
		t.Fatalf("consume = %v", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if want := []bool{true, false, true, false}; fmt.Sprint(l.aheadOf) != fmt.Sprint(want) {
		t.Errorf("polled ahead of each poll's commit: %v, want %v", l.aheadOf, want)
	}
}

// onceFailing decodes as mapDecoder, but fails the first time it is given
// "fails once".
type onceFailing struct {
	mu     sync.Mutex
	failed bool
}

func (d *onceFailing) DecodeWire(ctx context.Context, id int, data []byte, typ string) (any, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if string(data) == "fails once" && !d.failed {
		d.failed = true
		return nil, fmt.Errorf("the registry is unavailable")
	}
	return mapDecoder{}.DecodeWire(ctx, id, data, typ)
}
