package kafka

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/strata-events/strata/internal/harness"
)

// The checkpoint partition's last transaction may have been aborted — a
// relay that failed before its commit, or one fenced by its successor —
// so that the offsets just below its end hold records a read_committed
// reader never hands over. Init reads the last committed checkpoint all
// the same, at once.
func TestInitReadsPastAnAbortedTransactionAtTheEnd(t *testing.T) {
	cfg := testConfig(t)
	p := newPublisher(t, cfg, "first")
	if _, err := p.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, events("Order-a", 1, 2), Checkpoint{Cursor: "committed"}, nil); err != nil {
		t.Fatal(err)
	}
	// Three transactions refused before their commit. A Publish that
	// fails before it gets there (kfake has answered one
	// OUT_OF_ORDER_SEQUENCE_NUMBER under load) is followed by Init, as the
	// relay does, and made again.
	refuse := errors.New("the lease is lost")
	for i, failures := 0, 0; i < 3; {
		err := p.Publish(ctx, events("Order-a", 3+i, 2), Checkpoint{Cursor: "aborted"}, func(context.Context) error { return refuse })
		if errors.Is(err, refuse) {
			i++
			continue
		}
		if failures++; err == nil || failures > 3 {
			t.Fatalf("Publish with a failing beforeCommit = %v, want it refused", err)
		}
		t.Logf("publish %d failed before its commit: %v; Init again, as the relay does", i, err)
		if cp, err := p.Init(ctx); err != nil || cp.Cursor != "committed" {
			t.Fatalf("Init after a failed Publish = %+v, %v; want the committed checkpoint", cp, err)
		}
	}
	p.Close()
	cp, err := newPublisher(t, cfg, "second").Init(ctx)
	if err != nil || cp.Cursor != "committed" {
		t.Fatalf("Init after aborted transactions = %+v, %v; want the committed checkpoint", cp, err)
	}
}

// A broker that crashes with a transaction in flight aborts it as it
// recovers, without writing a marker (kfake does): the offsets of the
// transaction's checkpoint stay below the partition's end, and no
// read_committed reader ever hands them over. Init reads the last
// committed checkpoint all the same. The crash is the broker's state on
// disk copied while the transaction is open, restored after it stopped.
func TestInitReadsPastATransactionTheBrokerAbortedAsItRecovered(t *testing.T) {
	dir := t.TempDir()
	broker, err := harness.StartKafka(harness.KafkaOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Stop()
	cfg := testConfig(t)
	cfg.Brokers = broker.Brokers()
	p := newPublisher(t, cfg, "first")
	if _, err := p.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, events("Order-a", 1, 2), Checkpoint{Cursor: "committed"}, nil); err != nil {
		t.Fatal(err)
	}
	broker.Stop() // saved cleanly
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	crashed := t.TempDir()
	inFlight, resume := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- p.Publish(ctx, events("Order-a", 3, 2), Checkpoint{Cursor: "in flight"}, func(context.Context) error {
			close(inFlight)
			<-resume
			return nil
		})
	}()
	<-inFlight
	if err := os.CopyFS(crashed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	close(resume)
	<-done
	p.Close()
	broker.Stop()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(crashed, dir); err != nil {
		t.Fatal(err)
	}
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	cp, err := newPublisher(t, cfg, "second").Init(ctx)
	if err != nil || cp.Cursor != "committed" {
		t.Fatalf("Init after the crash = %+v, %v; want the committed checkpoint", cp, err)
	}
}
