package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/client"
	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/orders"
)

// The seed scenario (CONTRACT.md's example). Each run starts from an empty
// store, so the ids are the same every time.
const (
	orderID    = "a1b2c3d4"
	stream     = "Order-" + orderID
	customerID = "user123"
	address    = "123 Main St, Anytown, USA"
	// secondOrderID is user123's order written with version 2 of
	// OrderItemAdded.
	secondOrderID = "e5f6a7b8"
)

// The background shoppers.
const (
	shoppers   = 6
	ordersEach = 4
)

var catalogue = []struct{ id, price string }{
	{"widget-x", "15.99"}, {"gadget-y", "9.50"}, {"gizmo-z", "4.25"}, {"sprocket-q", "2.10"}, {"doohickey-k", "7.75"},
}

var addresses = []string{
	"42 Elm St, Springfield, USA", "9 Harbour Rd, Portsmouth, UK", "5 Ocean Dr, Anytown, USA",
	"1 Rue de Rivoli, Paris, France", "77 Hill Rd, Lakeside, USA",
}

// catchUpTimeout bounds the wait for the read models to show what was
// appended.
const catchUpTimeout = 30 * time.Second

// walkthrough drives the scenario through the HTTP APIs and says what
// happens, one numbered step at a time.
type walkthrough struct {
	*demo
	steps       int
	shipVersion int64 // the order's version once it shipped
	shop        shopping
}

// run runs the steps in order. A step is a method that starts with
// w.step, which numbers it.
func (w *walkthrough) run(ctx context.Context) error {
	w.say("\nThe walkthrough: an order's life, told as events.")
	for _, step := range []func(context.Context) error{
		w.createOrder,
		w.startShoppers,
		w.concurrentAppends,
		w.badData,
		w.shipOrder,
		w.rejectedCommand,
		w.shoppersDone,
		w.replay,
		w.readAll,
		w.kafkaRecords,
		w.readModels,
		w.sharedWork,
		w.schemaEvolution,
		w.erasure,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// step starts the next step: its number, then its first paragraph.
func (w *walkthrough) step(format string, args ...any) {
	w.steps++
	w.say("\n%d. "+format, append([]any{w.steps}, args...)...)
}

func (w *walkthrough) createOrder(ctx context.Context) error {
	w.step(`An event is a fact, named in the past tense: OrderCreated, OrderItemAdded, OrderShipped.
   The events of one thing form its stream, here Order-%s, and each event takes the stream's next
   version: 1, 2, 3 ... Events are only ever appended, never changed: the order's state is what its
   events add up to.

   Customer %s opens order %s and puts two widget-x in it, in one append of two events.
   expectedVersion 0 says that the stream must not exist yet:`, orderID, customerID, orderID)
	events := []string{
		event("OrderCreated", "orderId", orderID, "customerId", customerID, "timestamp", at(0)),
		itemAdded(orderID, "widget-x", 2, "15.99", 1),
	}
	w.say("   POST %s/v1/streams/%s/events", w.writer.base, stream)
	w.say("%s", indentBy(string(appendBody(0, events)), "      "))
	r, err := w.writer.mustAppend(ctx, stream, 0, events...)
	if err != nil {
		return err
	}
	w.say("   → %s", status(r.status))
	w.say("%s", indentJSON(r.raw, "      "))
	w.say("   Both events were stored, as versions 1 and 2, in one transaction: an append is stored whole or not at all.")
	return nil
}

// shopping is what the background shoppers did.
type shopping struct {
	wg              sync.WaitGroup
	mu              sync.Mutex
	orders, shipped int
	appends, events int
	widgetShipped   int // shipped orders with widget-x in them
	err             error
	// The writer's group-commit counters when the shoppers started.
	statements, grouped int
}

func (w *walkthrough) startShoppers(ctx context.Context) error {
	w.step(`Other customers shop at the same time: %d clients start placing %d orders each, in the
   background, while the next steps go on.`, shoppers, ordersEach)
	statements, grouped, err := w.groupCommits(ctx)
	if err != nil {
		return err
	}
	w.shop.statements, w.shop.grouped = statements, grouped
	for g := range shoppers {
		w.shop.wg.Go(func() {
			if err := w.shopper(ctx, g); err != nil {
				w.shop.mu.Lock()
				if w.shop.err == nil {
					w.shop.err = err
				}
				w.shop.mu.Unlock()
			}
		})
	}
	return nil
}

// shopper places ordersEach orders for a customer of its own, ships all
// but the last, and counts what it did.
func (w *walkthrough) shopper(ctx context.Context, g int) error {
	for j := range ordersEach {
		id := randomID()
		events := []string{event("OrderCreated", "orderId", id, "customerId", fmt.Sprintf("user%d", 201+g), "timestamp", at(2+j))}
		widget := false
		for k := range 1 + (g+j)%3 {
			it := catalogue[(g+j+k)%len(catalogue)]
			widget = widget || it.id == "widget-x"
			events = append(events, itemAdded(id, it.id, 1+(g+k)%3, it.price, 3+j))
		}
		r, err := w.writer.mustAppend(ctx, "Order-"+id, 0, events...)
		if err != nil {
			return err
		}
		w.shop.count(1, len(events), false, false)
		if err := sleep(ctx, time.Duration(10+5*g)*time.Millisecond); err != nil {
			return err
		}
		if j == ordersEach-1 {
			continue // this one stays open
		}
		ship := about(fmt.Sprintf("user%d", 201+g), event("OrderShipped", "orderId", id, "shippingAddress", addresses[(g+j)%len(addresses)], "timestamp", at(20+j)))
		if _, err := w.writer.mustAppend(ctx, "Order-"+id, r.version("lastVersion"), ship); err != nil {
			return err
		}
		w.shop.count(1, 1, true, widget)
	}
	return nil
}

func (s *shopping) count(appends, events int, shipped, widget bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.appends += appends
	s.events += events
	if !shipped {
		s.orders++
		return
	}
	s.shipped++
	if widget {
		s.widgetShipped++
	}
}

func (w *walkthrough) concurrentAppends(ctx context.Context) error {
	w.step(`Optimistic concurrency. Two clerks, A and B, each add an item to the order at the same
   moment. Each reads the stream first and sees version 2, then appends "at version 2". Nobody holds
   a lock while they decide: the store accepts one append and refuses the other, because that clerk
   decided on an order that has changed since; it must look again.`)
	type clerk struct {
		name, item, price string
		read              int64
		r                 reply
		err               error
	}
	clerks := []*clerk{{name: "A", item: "gadget-y", price: "9.50"}, {name: "B", item: "widget-x", price: "15.99"}}
	for _, c := range clerks {
		page, err := w.readStream(ctx)
		if err != nil {
			return err
		}
		c.read = page.Version
		w.say("   clerk %s reads the stream: version %d", c.name, c.read)
	}
	w.say("   Both append their item at once, each with expectedVersion %d:", clerks[0].read)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, c := range clerks {
		wg.Go(func() {
			<-start
			c.r, c.err = w.writer.append(ctx, stream, c.read, itemAdded(orderID, c.item, 1, c.price, 2))
		})
	}
	close(start)
	wg.Wait()
	var won, lost *clerk
	for _, c := range clerks {
		if c.err != nil {
			return c.err
		}
		switch c.r.status {
		case http.StatusCreated:
			won = c
		case http.StatusConflict:
			lost = c
		}
	}
	if won == nil || lost == nil {
		return blame(fmt.Errorf("two appends at version %d answered %d and %d, not 201 and 409",
			clerks[0].read, clerks[0].r.status, clerks[1].r.status), w.writer.proc)
	}
	w.say("      clerk %s, 1 × %-9s → %s, version %d", won.name, won.item, status(won.r.status), won.r.version("firstVersion"))
	e := lost.r.err()
	w.say("      clerk %s, 1 × %-9s → %s %s: %s", lost.name, lost.item, status(lost.r.status), e["code"], e["message"])
	page, err := w.readStream(ctx)
	if err != nil {
		return err
	}
	last := page.Events[len(page.Events)-1]
	w.say("   Clerk %s reads the stream again: version %d, whose last event is clerk %s's: %s %s.",
		lost.name, page.Version, won.name, last.Type, last.Data)
	w.say("   Adding its item still makes sense, so it appends again, at version %d:", page.Version)
	r, err := w.writer.mustAppend(ctx, stream, page.Version, itemAdded(orderID, lost.item, 1, lost.price, 3))
	if err != nil {
		return err
	}
	w.say("      clerk %s, 1 × %-9s → %s, version %d", lost.name, lost.item, status(r.status), r.version("firstVersion"))
	return nil
}

func (w *walkthrough) badData(ctx context.Context) error {
	w.step(`Every event's data must fit its type's schema (an Avro record, kept in the schema registry).
   A client sends a price of 15.999, but the schema keeps prices exact to the cent:`)
	r, err := w.writer.append(ctx, stream, -1, itemAdded(orderID, "widget-x", 1, "15.999", 4))
	if err != nil {
		return err
	}
	e := r.err()
	w.say("   → %s %s: %s", status(r.status), e["code"], e["message"])
	page, err := w.readStream(ctx)
	if err != nil {
		return err
	}
	w.say("   Nothing was stored: the stream is still at version %d.", page.Version)
	return nil
}

func (w *walkthrough) shipOrder(ctx context.Context) error {
	w.step(`The order ships, to %s. The client gives the event an id of its own, so
   that when an answer is lost on the way (a timeout, a dropped connection) it can send the same
   request again safely:`, address)
	ship := about(customerID, eventWithID(eventstore.NewUUIDv7().String(), "OrderShipped", "orderId", orderID, "shippingAddress", address, "timestamp", at(30)))
	first, err := w.writer.mustAppend(ctx, stream, -1, ship)
	if err != nil {
		return err
	}
	again, err := w.writer.mustAppend(ctx, stream, -1, ship)
	if err != nil {
		return err
	}
	w.shipVersion = first.version("firstVersion")
	w.say("   first send   → %s, version %d", status(first.status), w.shipVersion)
	w.say("   the same one → %s, version %d: the first answer again, and nothing stored twice.", status(again.status), again.version("firstVersion"))
	return nil
}

// rejectedCommand shows a command the Order aggregate refuses: an item
// added to the order now that it has shipped. The store checks versions,
// not business rules (it would append an OrderItemAdded after an
// OrderShipped): the rule lives in the code that decides, which replays
// the stream to know the order's state.
func (w *walkthrough) rejectedCommand(ctx context.Context) error {
	w.step(`Appends check versions, not business rules: the store would take an item added after the
   order shipped. Rules belong to the code that decides what may happen, and it decides on the state
   the events add up to. Strata's Go command API (package aggregate) replays the stream, asks the
   Order aggregate (internal/orders) whether the command is allowed, and appends its events at the
   version it read — deciding again if another command got there first.
   The customer tries to add one more widget-x to order %s:
   orders.AddItem(ctx, client, %q, "widget-x", 1, "15.99")`, orderID, orderID)
	c, err := client.New(w.writer.base, client.Options{})
	if err != nil {
		return err
	}
	res, err := orders.AddItem(ctx, c, orderID, "widget-x", 1, "15.99")
	if !errors.Is(err, aggregate.ErrRejected) {
		return fmt.Errorf("adding an item to the shipped order: got %+v, %v; want a rejection", res, err)
	}
	w.say("   → rejected: %v", err)
	w.say(`   The aggregate read the stream's %d events, saw OrderShipped, and refused; nothing was appended.
   The same command on an open order is checked the same way: positive quantities, exact prices,
   no shipping of an empty order.`, w.shipVersion)
	return nil
}

func (w *walkthrough) shoppersDone(ctx context.Context) error {
	w.shop.wg.Wait()
	if w.shop.err != nil {
		return w.shop.err
	}
	statements, grouped, err := w.groupCommits(ctx)
	if err != nil {
		return err
	}
	s := &w.shop
	w.step(`Meanwhile, the %d background clients placed %d orders for other customers, and shipped %d
   of them: %d events in %d appends, every one answered 201 Created.`, shoppers, s.orders, s.shipped, s.events, s.appends)
	if appends, stmts := grouped-s.grouped, statements-s.statements; appends > stmts {
		w.say(`   Appends of one event that reach the writer together share one SQL statement and one commit
   (group commit), each keeping its own version check: %d of them were stored by %d statements.`, appends, stmts)
	}
	return nil
}

func (w *walkthrough) replay(ctx context.Context) error {
	w.step(`Reading the stream replays the order, event by event, in version order:`)
	page, err := w.readStream(ctx)
	if err != nil {
		return err
	}
	w.say("   GET %s/v1/streams/%s/events", w.writer.base, stream)
	for _, e := range page.Events {
		w.say("      v%d  %-15s %s", e.Version, e.Type, e.Data)
	}
	w.say(`   The order is not a row that was updated %d times: it is these %d events. Whatever wants to know
   about it replays them, which is what the projections below do.`, len(page.Events), len(page.Events))
	return nil
}

func (w *walkthrough) readAll(ctx context.Context) error {
	w.step(`All the streams together ($all), in the order their events became visible, read page by page:
   each page's "next" is an opaque cursor to pass as "after" for the page that follows.`)
	cursor := ""
	for n := 1; n <= 3; n++ {
		var page streamPage
		if err := w.writer.get(ctx, "/v1/events?limit=4&after="+url.QueryEscape(cursor), &page); err != nil {
			return err
		}
		var names []string
		for _, e := range page.Events {
			names = append(names, fmt.Sprintf("%s v%d %s", e.StreamID, e.Version, e.Type))
		}
		w.say("   page %d: %s", n, strings.Join(names, ", "))
		cursor, _ = page.Next.(string)
	}
	w.say("   ... Reading again from a cursor returns the same events, and never skips one that commits late.")
	return nil
}

func (w *walkthrough) kafkaRecords(ctx context.Context) error {
	w.step(`The writer's relay publishes every stored event, exactly once, to the Kafka topic of its
   category, events.Order, with the stream as the key, in Kafka transactions. A consumer reading
   only committed records (read_committed) finds the order's events:`)
	records, total, err := readRecords(ctx, w.brokers, stream, int(w.shipVersion))
	if err != nil {
		return err
	}
	if len(records) < int(w.shipVersion) {
		return blame(fmt.Errorf("events.Order holds %d of %s's %d events after 15s", len(records), stream, w.shipVersion), w.writer.proc)
	}
	for _, r := range records {
		w.say("   partition %d, offset %-3d key %s  ce_type=%-14s ce_streamversion=%d  value: 0x00, schema id %d, %d bytes of Avro",
			r.partition, r.offset, r.key, r.msg.Type, r.msg.Version, r.msg.SchemaID, len(r.msg.Data))
	}
	w.say(`   (The offsets skip the markers of Kafka's transactions.) events.Order holds %d records in all,
   over %d partitions. A record's partition comes from its key, so all of a stream's events are on
   one partition, in version order.`, total, partitions)
	return nil
}

func (w *walkthrough) readModels(ctx context.Context) error {
	w.step(`A projection turns events into a read model: a table shaped to answer one question, kept up
   to date as events arrive. order_summary answers "what is in order X, and what does it come to?";
   shipped_items "which shipped orders held item Y, or went to Z?". The projectors read the events
   from Kafka, so the read models trail the store by a moment (they are eventually consistent), and
   they can be rebuilt from the events at any time.`)
	p1, p2 := w.projectors[0], w.projectors[1]
	var (
		summary order
		all     struct{ Orders []order }
		found   struct{ Items []shippedItem }
	)
	wantOrders, wantShipped := 1+w.shop.orders, 1+w.shop.widgetShipped
	if err := w.waitForReadModels(ctx, func() (bool, string, error) {
		// Listings, not GET /v1/orders/{id}: an order that is not there
		// yet would fill the log with 404s.
		if err := p1.get(ctx, "/v1/orders?limit=1000", &all); err != nil {
			return false, "", err
		}
		summary = order{}
		for _, o := range all.Orders {
			if o.OrderID == orderID {
				summary = o
			}
		}
		if err := p2.get(ctx, "/v1/shipped-items?q=widget-x&limit=1000", &found); err != nil {
			return false, "", err
		}
		state := fmt.Sprintf("order %s at version %d of %d, %d of %d orders, %d of %d shipped widget-x items",
			orderID, summary.Version, w.shipVersion, len(all.Orders), wantOrders, len(found.Items), wantShipped)
		return summary.Version >= w.shipVersion && len(all.Orders) >= wantOrders && len(found.Items) >= wantShipped, state, nil
	}); err != nil {
		return err
	}
	r, err := p1.do(ctx, http.MethodGet, "/v1/orders/"+orderID, "", nil)
	if err != nil {
		return err
	}
	w.say("   GET %s/v1/orders/%s", p1.base, orderID)
	w.say("%s", indentJSON(r.raw, "      "))
	var sums []string
	for _, it := range summary.Items {
		sums = append(sums, fmt.Sprintf("%d × %s", it.Quantity, it.Price))
	}
	w.say(`   widget-x was added twice, 2 and then 1, and shows once, with quantity 3. The total,
   %s = %s, is exact: prices are decimals, never floating point.`, strings.Join(sums, " + "), summary.Total)
	w.say("\n   GET %s/v1/shipped-items?q=widget-x      (projector 2 answers as well: the read models are in one database)", p2.base)
	for _, it := range found.Items {
		w.say("      order %s  %d × %s  shipped %s to %s", it.OrderID, it.Quantity, it.ItemID, it.ShippedAt.Format("2006-01-02 15:04"), it.ShippingAddress)
	}
	w.say("   q also finds the words of the address: try q=anytown.")
	return nil
}

// waitForReadModels polls caughtUp until it says the read models show what
// the walkthrough appended, or catchUpTimeout passes; caughtUp also
// describes how far they are, for the message of a timeout.
func (w *walkthrough) waitForReadModels(ctx context.Context, caughtUp func() (bool, string, error)) error {
	fmt.Fprint(w.out, "   Waiting for the projectors to catch up ...")
	start := time.Now()
	for polls := 1; ; polls++ {
		ok, state, err := caughtUp()
		if err != nil {
			w.say("")
			return err
		}
		if ok && polls == 1 {
			w.say(" they already have.")
			return nil
		}
		if ok {
			w.say(" done in %s.", time.Since(start).Round(10*time.Millisecond))
			return nil
		}
		if time.Since(start) > catchUpTimeout {
			w.say("")
			procs := append([]*process{w.writer.proc}, w.projectors[0].proc, w.projectors[1].proc)
			return blame(fmt.Errorf("the read models have not caught up within %s (%s): "+
				"is the writer's relay publishing, are the projectors applying? Their logs follow", catchUpTimeout, state), procs...)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

func (w *walkthrough) sharedWork(ctx context.Context) error {
	w.step(`Two workers shared that work. Kafka gives each partition of events.Order to one member of a
   projection's consumer group, and all of a stream's events are on one partition: one worker applies
   them, in order. projector status shows each partition's progress (lag 0: all applied):`)
	out, err := w.command(ctx, "bin/projector", "status", "--sample", "0")
	if err != nil {
		return err
	}
	w.say("   $ bin/projector status --sample 0")
	w.say("%s", indentBy(out, "      "))
	w.say("   Each worker's /metrics tells the partitions it holds and the events it applied:")
	for i, p := range w.projectors {
		lags, err := p.metrics(ctx, "strata_projection_lag_records")
		if err != nil {
			return err
		}
		events, err := p.metrics(ctx, "strata_projection_events_total")
		if err != nil {
			return err
		}
		var parts []string
		for _, name := range []string{"order_summary", "shipped_items"} {
			var held []string
			for _, m := range lags {
				if m.labels["projection"] == name {
					held = append(held, m.labels["partition"])
				}
			}
			applied := sum(events, map[string]string{"projection": name, "outcome": "applied"})
			parts = append(parts, fmt.Sprintf("%s %s, %.0f events", name, partitionList(held), applied))
		}
		w.say("      projector %d (%s)   %s", i+1, p.base, strings.Join(parts, "    "))
	}
	w.say(`   Were one worker to stop, the other would take its partitions over within the group's session
   timeout (10 s), from the last event applied: each batch changes the read model in the same
   transaction as the stored offsets, so every event is applied exactly once.`)
	return nil
}

func (w *walkthrough) schemaEvolution(ctx context.Context) error {
	const subject = "example.orders.OrderItemAdded"
	v2, err := os.ReadFile("schemas/OrderItemAdded.v2.avsc")
	if err != nil {
		return err
	}
	added, err := addedFields("schemas/OrderItemAdded.avsc", v2)
	if err != nil {
		return err
	}
	w.step(`Schemas evolve. Version 2 of OrderItemAdded (schemas/OrderItemAdded.v2.avsc) adds a field, with a
   default for the events written before it existed:
      %s
   The registry (Confluent's API, at /registry) checks it against every earlier version first
   (FULL_TRANSITIVE: new readers can read old events, and old readers new ones), then registers it:`,
		strings.Join(added, "\n      "))
	body, err := json.Marshal(map[string]string{"schema": string(v2)})
	if err != nil {
		return err
	}
	const contentType = "application/vnd.schemaregistry.v1+json"
	for _, path := range []string{"/registry/compatibility/subjects/" + subject + "/versions/latest", "/registry/subjects/" + subject + "/versions"} {
		r, err := w.writer.do(ctx, http.MethodPost, path, contentType, body)
		if err != nil {
			return err
		}
		if r.status != http.StatusOK {
			return blame(fmt.Errorf("POST %s: %d %s", path, r.status, r.raw), w.writer.proc)
		}
		w.say("   POST %s → %s %s", path, status(r.status), bytes.TrimSpace(r.raw))
	}

	w.say("   The writer uses it at once. %s opens a second order, %s, with an item priced in euros:", customerID, secondOrderID)
	second := "Order-" + secondOrderID
	events := []string{
		event("OrderCreated", "orderId", secondOrderID, "customerId", customerID, "timestamp", at(40)),
		event("OrderItemAdded", "orderId", secondOrderID, "itemId", "espresso-beans", "quantity", 1,
			"price", json.Number("20.00"), "timestamp", at(41), "currency", "EUR"),
	}
	w.say("%s", indentBy(string(appendBody(0, events)), "      "))
	r, err := w.writer.mustAppend(ctx, second, 0, events...)
	if err != nil {
		return err
	}
	w.say("   → %s, versions %d to %d", status(r.status), r.version("firstVersion"), r.version("lastVersion"))

	var mine struct{ Orders []order }
	path := "/v1/orders?customerId=" + customerID
	if err := w.waitForReadModels(ctx, func() (bool, string, error) {
		if err := w.projectors[0].get(ctx, path, &mine); err != nil {
			return false, "", err
		}
		for _, o := range mine.Orders {
			if o.OrderID == secondOrderID && o.Version >= r.version("lastVersion") {
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("order %s is not in the read model yet", secondOrderID), nil
	}); err != nil {
		return err
	}
	w.say("   Old and new side by side in the read model: GET %s%s", w.projectors[0].base, path)
	tw := tabwriter.NewWriter(w.out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "      order\tstatus\titem\tquantity\tprice\tcurrency")
	for _, o := range mine.Orders {
		for _, it := range o.Items {
			fmt.Fprintf(tw, "      %s\t%s\t%s\t%d\t%s\t%s\n", o.OrderID, o.Status, it.ItemID, it.Quantity, it.Price, it.Currency)
		}
	}
	tw.Flush()
	w.say(`   The items of %s were written with version 1, which has no currency: they read as USD, the
   default. espresso-beans was written with version 2, in EUR. The writer's reads do the same, giving
   every event in the latest version of its schema; schemaId says which version it was written with:`, orderID)
	for _, o := range []struct{ stream, query string }{{stream, "?from=2&limit=1"}, {second, "?from=2&limit=1"}} {
		var page streamPage
		if err := w.writer.get(ctx, "/v1/streams/"+o.stream+"/events"+o.query, &page); err != nil {
			return err
		}
		for _, e := range page.Events {
			w.say("      %s v%d  schemaId %d  %s", o.stream, e.Version, e.SchemaID, e.Data)
		}
	}
	return nil
}

func (w *walkthrough) erasure(ctx context.Context) error {
	w.step(`Personal data, and forgetting it. The shipping address is marked personal in its schema
   ("strata.personal": true), and each event names the person it is about (metadata.dataSubject, or
   OrderCreated's customerId). The writer encrypts the address with that customer's own key, so the
   store and the Kafka records hold only an envelope; Strata's reads decrypt it. A Kafka record cannot
   be deleted, but a key can. %s asks to be forgotten:
      DELETE /v1/data-subjects/%s`, customerID, customerID)
	r, err := w.writer.do(ctx, http.MethodDelete, "/v1/data-subjects/"+customerID, "", nil)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return blame(fmt.Errorf("DELETE /v1/data-subjects/%s: %d %s", customerID, r.status, r.raw), w.writer.proc)
	}
	var erased struct {
		Streams []struct{ StreamID string }
	}
	if err := json.Unmarshal(r.raw, &erased); err != nil {
		return err
	}
	w.say("   → %s: the key is destroyed, and $DataSubjectErased is appended to each of the %d streams holding", status(r.status), len(erased.Streams))
	w.say("   events of %s, for the read models to redact what they copied. The order now reads:", customerID)
	var page streamPage
	if err := w.writer.get(ctx, "/v1/streams/"+stream+"/events?from="+strconv.FormatInt(w.shipVersion, 10), &page); err != nil {
		return err
	}
	for _, e := range page.Events {
		w.say("      v%d %-18s %s", e.Version, e.Type, e.Data)
	}
	var summary struct{ ShippingAddress string }
	path := "/v1/orders/" + orderID
	if err := w.waitForReadModels(ctx, func() (bool, string, error) {
		if err := w.projectors[0].get(ctx, path, &summary); err != nil {
			return false, "", err
		}
		return summary.ShippingAddress == "[erased]", "order_summary still holds the address", nil
	}); err != nil {
		return err
	}
	w.say(`   And so does the read model, GET %s%s: order_summary redacted the address, and so
   did shipped_items's -- strata:on-erased statement. The events stay, with the address erased in
   every copy of them: the store, Kafka, the read models, and their backups. A rebuild gives the same
   rows. Other customers' orders are untouched.`, w.projectors[0].base, path)
	return nil
}

// addedFields returns the fields of the schema v2 that the schema in the
// file v1 lacks, as JSON without their docs.
func addedFields(v1 string, v2 []byte) ([]string, error) {
	type field struct {
		Name    string `json:"name"`
		Type    any    `json:"type"`
		Default any    `json:"default"`
	}
	var old, next struct{ Fields []field }
	b, err := os.ReadFile(v1)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &old); err != nil {
		return nil, fmt.Errorf("%s: %w", v1, err)
	}
	if err := json.Unmarshal(v2, &next); err != nil {
		return nil, fmt.Errorf("version 2 of OrderItemAdded: %w", err)
	}
	have := map[string]bool{}
	for _, f := range old.Fields {
		have[f.Name] = true
	}
	var out []string
	for _, f := range next.Fields {
		if !have[f.Name] {
			out = append(out, object("name", f.Name, "type", f.Type, "default", f.Default))
		}
	}
	return out, nil
}

// readStream reads the order's stream.
func (w *walkthrough) readStream(ctx context.Context) (streamPage, error) {
	var page streamPage
	err := w.writer.get(ctx, "/v1/streams/"+stream+"/events", &page)
	return page, err
}

// groupCommits reads the writer's group-commit counters: statements run,
// and appends they stored.
func (w *walkthrough) groupCommits(ctx context.Context) (statements, appends int, err error) {
	s, err := w.writer.metrics(ctx, "strata_append_group_statements_total")
	if err != nil {
		return 0, 0, err
	}
	a, err := w.writer.metrics(ctx, "strata_append_grouped_appends_total")
	if err != nil {
		return 0, 0, err
	}
	return int(sum(s, nil)), int(sum(a, nil)), nil
}

// at is a time of the scenario's day.
func at(minute int) string {
	return time.Date(2023, 10, 27, 10, minute, 0, 0, time.UTC).Format(time.RFC3339)
}

func itemAdded(order, item string, quantity int, price string, minute int) string {
	return event("OrderItemAdded", "orderId", order, "itemId", item, "quantity", quantity,
		"price", json.Number(price), "timestamp", at(minute))
}

// status is an HTTP status for people: "201 Created".
func status(code int) string { return fmt.Sprintf("%d %s", code, http.StatusText(code)) }

// indentBy prefixes every line of s.
func indentBy(s, prefix string) string { return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix) }

// randomID is eight hex digits from the random end of a UUID (the start of
// a version 7 UUID is the time, the same for ids made together).
func randomID() string {
	s := eventstore.NewUUIDv7().String()
	return s[len(s)-8:]
}
