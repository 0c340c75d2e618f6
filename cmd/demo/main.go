// Command demo runs Strata on embedded defaults and walks through what it
// can do, for someone meeting it for the first time. It is what `make demo`
// runs; its state lives under .data/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/postgres"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer) error {
	say := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	dir, err := filepath.Abs(".data/postgres")
	if err != nil {
		return err
	}
	say("Starting PostgreSQL from this machine's binaries (data in %s) ...", dir)
	pg, err := harness.StartPostgres(ctx, harness.PostgresOptions{Dir: dir})
	if err != nil {
		return err
	}
	defer pg.Stop()
	say("  ready at %s\n", pg.URL)

	store, err := postgres.Open(ctx, pg.URL, postgres.Options{})
	if err != nil {
		return err
	}
	defer store.Close()
	applied, err := store.Migrate(ctx, postgres.MigrateOptions{})
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		say("Created the store's tables (%s).\n", strings.Join(applied, ", "))
	}

	// A cursor at the current end of $all, to show this run's events later.
	var head eventstore.Cursor
	for {
		p, err := store.ReadAll(ctx, head, eventstore.MaxReadLimit)
		if err != nil {
			return err
		}
		head = p.Next
		if len(p.Events) == 0 {
			break
		}
	}

	order := randomID()
	stream := eventstore.MustParseStreamID("Order-" + order)
	say("1. An order's life is a stream of events: %s", stream)
	say("   (event data is opaque bytes to the store; here JSON, Avro once schemas are registered)")
	events := []eventstore.EventData{
		event("OrderCreated", `{"orderId":"%s","customerId":"user123"}`, order),
		event("OrderItemAdded", `{"orderId":"%s","itemId":"widget-x","quantity":2,"price":15.99}`, order),
	}
	res, err := store.Append(ctx, stream, eventstore.NoStream, events)
	if err != nil {
		return err
	}
	say("   appended %d events with expected version 0 (the stream must be new): versions %d..%d\n", len(res.Events), res.FirstVersion, res.LastVersion)

	say("2. Optimistic concurrency: two clients both read version 2 and both append.")
	a := event("OrderItemAdded", `{"orderId":"%s","itemId":"gadget-y","quantity":1,"price":9.50}`, order)
	b := event("OrderShipped", `{"orderId":"%s","shippingAddress":"123 Main St, Anytown, USA"}`, order)
	if _, err := store.Append(ctx, stream, 2, []eventstore.EventData{a}); err != nil {
		return err
	}
	say("   client A appends OrderItemAdded at expected version 2: stored as version 3")
	_, err = store.Append(ctx, stream, 2, []eventstore.EventData{b})
	var wrong *eventstore.WrongExpectedVersionError
	if !errors.As(err, &wrong) {
		return fmt.Errorf("client B's append should have conflicted, got %v", err)
	}
	say("   client B appends OrderShipped at expected version 2: refused, %s", eventstore.ErrorCode(err))
	say("     (%v)", err)
	b.ID = eventstore.NewUUIDv7()
	res, err = store.Append(ctx, stream, eventstore.ExpectedVersion(wrong.Actual), []eventstore.EventData{b})
	if err != nil {
		return err
	}
	say("   client B re-reads the order, decides again, appends at %d: stored as version %d\n", wrong.Actual, res.FirstVersion)

	say("3. Retries are safe: sending the same event ids again stores nothing twice.")
	again, err := store.Append(ctx, stream, eventstore.ExpectedVersion(wrong.Actual), []eventstore.EventData{b})
	if err != nil {
		return err
	}
	say("   the retry returns the first result (version %d, replayed = %v)\n", again.FirstVersion, again.Replayed)

	say("4. Reading the stream rebuilds the order's state:")
	page, err := store.ReadStream(ctx, stream, eventstore.StreamQuery{})
	if err != nil {
		return err
	}
	for _, e := range page.Events {
		say("   v%d  %-15s %s", e.Version, e.Type, e.Data)
	}

	say("\n5. All streams together ($all) are read page by page with an opaque cursor that")
	say("   never skips an event committing late with a lower position. From a cursor taken")
	say("   before this run, in pages of 3:")
	for _, s := range []string{"Customer-user123", "Order-" + randomID()} {
		if _, err := store.Append(ctx, eventstore.MustParseStreamID(s), eventstore.Any,
			[]eventstore.EventData{event("Noted", `{"stream":"%s"}`, s)}); err != nil {
			return err
		}
	}
	cursor := head
	for n := 1; ; n++ {
		p, err := store.ReadAll(ctx, cursor, 3)
		if err != nil {
			return err
		}
		if len(p.Events) == 0 {
			break
		}
		var names []string
		for _, e := range p.Events {
			names = append(names, fmt.Sprintf("%s@%d", e.StreamID, e.Version))
		}
		say("   page %d: %s", n, strings.Join(names, ", "))
		cursor = p.Next
	}
	say("\nThe store is in %s; run `make demo` again to add to it, `make clean` to remove it.", dir)
	say("Next to come: the Avro schema registry, the HTTP API, the Kafka relay and the projectors.")
	return nil
}

func event(typ, format string, args ...any) eventstore.EventData {
	return eventstore.EventData{Type: typ, Data: []byte(fmt.Sprintf(format, args...))}
}

// randomID is eight hex digits from the random end of a UUID (the start of
// a version 7 UUID is the time, the same for ids made together).
func randomID() string {
	s := eventstore.NewUUIDv7().String()
	return s[len(s)-8:]
}
