package chaos

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strata-events/strata/internal/avro"
	"github.com/strata-events/strata/internal/personal"
)

// The checker reads what the system holds — the store's table, the Kafka
// topic and the read models — with code of its own (SQL, a plain
// read_committed consumer, goavro, franz-go's murmur2 partitioner, its own
// fold of the events), and compares it with the ledger of what the writers
// acknowledged.

// invariant is one property the checker counts violations of.
type invariant struct {
	name    string
	count   int
	samples []string
}

func (v *invariant) add(format string, args ...any) {
	v.count++
	if len(v.samples) < 5 {
		v.samples = append(v.samples, fmt.Sprintf(format, args...))
	}
}

// storedEvent is a row of the store's events table.
type storedEvent struct {
	ID, Stream, Type string
	Version          int64
	Fingerprint      int64
	Data             []byte
	Native           map[string]any // Data decoded with its writer's schema
}

// store is everything the store holds.
type store struct {
	events   []*storedEvent // by stream, then version
	byID     map[string]*storedEvent
	schemaID map[int64]int32 // fingerprint → registry id
}

// storeKeys is a personal.KeyStore over the store's table of keys, read
// straight, for the checker to decrypt personal fields with.
type storeKeys struct {
	db     *pgxpool.Pool
	master *personal.MasterKeys
}

func (k storeKeys) KeyByID(ctx context.Context, id int64) (personal.Key, error) {
	key := personal.Key{ID: id}
	var masterID string
	var wrapped []byte
	err := k.db.QueryRow(ctx, "SELECT subject, master_key, wrapped FROM strata.data_subject_keys WHERE id = $1", id).Scan(&key.Subject, &masterID, &wrapped)
	if errors.Is(err, pgx.ErrNoRows) {
		return key, personal.ErrErased
	}
	if err != nil {
		return key, err
	}
	key.Secret, err = k.master.Unwrap(masterID, key.Subject, wrapped)
	return key, err
}

func (storeKeys) SubjectKey(context.Context, string) (personal.Key, error) {
	return personal.Key{}, errors.New("the checker makes no keys")
}

func (storeKeys) Destroy(context.Context, string) (int64, error) {
	return 0, errors.New("the checker destroys no keys")
}

// readStore reads the events table and decodes every event with goavro
// and the writer's schema from the registry's table, its personal fields
// decrypted first with the keys of the store and the system's master key.
func readStore(ctx context.Context, s *system) (*store, error) {
	st := &store{byID: map[string]*storedEvent{}, schemaID: map[int64]int32{}}
	codecs := map[int64]*goavro.Codec{}
	schemas := map[int64]*avro.Schema{}
	master, err := personal.LoadMasterKeys(s.masterKey)
	if err != nil {
		return nil, err
	}
	cipher := personal.NewCipher(storeKeys{s.db, master}, personal.Options{})
	rows, err := s.db.Query(ctx, `SELECT id, fingerprint, schema FROM strata.registry_schemas`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id int32
		var fp int64
		var text string
		if err := rows.Scan(&id, &fp, &text); err != nil {
			return nil, err
		}
		c, err := goavro.NewCodec(text)
		if err != nil {
			return nil, fmt.Errorf("schema %d: %w", id, err)
		}
		if schemas[fp], err = avro.Parse(text); err != nil {
			return nil, fmt.Errorf("schema %d: %w", id, err)
		}
		codecs[fp], st.schemaID[fp] = c, id
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = s.db.Query(ctx, `SELECT event_id::text, stream_id, version, type, schema_fp, data FROM strata.events ORDER BY stream_id, version`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		e := &storedEvent{}
		if err := rows.Scan(&e.ID, &e.Stream, &e.Version, &e.Type, &e.Fingerprint, &e.Data); err != nil {
			return nil, err
		}
		c := codecs[e.Fingerprint]
		if c == nil {
			return nil, fmt.Errorf("event %s: no schema with fingerprint %d", e.ID, e.Fingerprint)
		}
		plain, err := cipher.Open(ctx, schemas[e.Fingerprint], e.Data)
		if err != nil {
			return nil, fmt.Errorf("event %s: cannot decrypt its personal fields: %w", e.ID, err)
		}
		native, rest, err := c.NativeFromBinary(plain)
		if err != nil || len(rest) > 0 {
			return nil, fmt.Errorf("event %s: cannot decode its data (%v, %d bytes left)", e.ID, err, len(rest))
		}
		e.Native = native.(map[string]any)
		st.byID[e.ID] = e
		st.events = append(st.events, e)
	}
	return st, rows.Err()
}

// checkStore compares the store with the ledger.
func checkStore(st *store, appends []*appendRec) []*invariant {
	lost := &invariant{name: "acknowledged events not stored (lost)"}
	doubled := &invariant{name: "events stored twice (doubled)"}
	versions := &invariant{name: "stored versions not 1, 2, 3, ... or not as acknowledged"}
	partial := &invariant{name: "appends stored in part (not atomic)"}
	refused := &invariant{name: "refused appends stored"}
	phantom := &invariant{name: "stored events never sent"}
	data := &invariant{name: "stored data not as sent"}

	rows := map[string]int{}
	for _, e := range st.events {
		if rows[e.ID]++; rows[e.ID] > 1 {
			doubled.add("event %s stored again as %s@%d", e.ID, e.Stream, e.Version)
		}
	}
	var last string
	var v int64
	for _, e := range st.events {
		if e.Stream != last {
			last, v = e.Stream, 0
		}
		if e.Version != v+1 {
			versions.add("%s: version %d after %d", e.Stream, e.Version, v)
		}
		v = e.Version
	}
	sent := map[string]bool{}
	for _, r := range appends {
		stored := 0
		for i, ev := range r.Events {
			sent[ev.ID] = true
			e := st.byID[ev.ID]
			if e == nil {
				continue
			}
			stored++
			if e.Stream != r.Stream || e.Type != ev.Type {
				phantom.add("event %s sent as %s to %s is stored as %s in %s", ev.ID, ev.Type, r.Stream, e.Type, e.Stream)
			}
			if diff := dataDiff(ev.Data, e.Native); diff != "" {
				data.add("event %s of %s: %s", ev.ID, r.Stream, diff)
			}
			if r.acked() && (e.Version != r.First+int64(i) || i < len(r.Answered) && (r.Answered[i].ID != ev.ID || r.Answered[i].Version != e.Version)) {
				versions.add("event %s of %s acknowledged at version %d (answer %+v), stored at %d", ev.ID, r.Stream, r.First+int64(i), r.Answered, e.Version)
			}
		}
		switch {
		case r.acked() && stored < len(r.Events):
			lost.add("append to %s at version %d acknowledged (%d) with %d events, %d stored", r.Stream, r.Expected, r.Status, len(r.Events), stored)
		case !r.acked() && stored > 0 && stored < len(r.Events):
			partial.add("unanswered append to %s: %d of %d events stored", r.Stream, stored, len(r.Events))
		case r.Status >= 400 && r.Status < 500 && stored > 0:
			refused.add("append to %s refused with %d %s, but %d of its events are stored", r.Stream, r.Status, r.Code, stored)
		}
	}
	for _, e := range st.events {
		if !sent[e.ID] {
			phantom.add("stored event %s (%s@%d) was never sent", e.ID, e.Stream, e.Version)
		}
	}
	return []*invariant{lost, doubled, versions, partial, refused, phantom, data}
}

// dataDiff compares the data a client sent with the data stored (decoded
// with its writer's schema); it returns "" when they agree.
func dataDiff(sent, stored map[string]any) string {
	for k, want := range sent {
		got := stored[k]
		ok := false
		switch k {
		case "timestamp":
			t, err := time.Parse(time.RFC3339Nano, want.(string))
			st, isTime := got.(time.Time)
			ok = err == nil && isTime && st.UnixMilli() == t.UnixMilli()
		case "price":
			r, isRat := got.(*big.Rat)
			w, _ := new(big.Rat).SetString(want.(string))
			ok = isRat && w != nil && r.Cmp(w) == 0
		case "quantity":
			n, isInt := got.(int32)
			ok = isInt && int(n) == want.(int)
		default:
			ok = fmt.Sprint(got) == fmt.Sprint(want)
		}
		if !ok {
			return fmt.Sprintf("%s sent %v, stored %v", k, want, got)
		}
	}
	if c, ok := stored["currency"]; ok && sent["currency"] == nil && c != "USD" {
		return fmt.Sprintf("currency sent none (USD), stored %v", c)
	}
	return ""
}

// kafkaReader reads the topic from the start with a read_committed
// consumer, keeping every record, until it has what the broker has
// committed.
type kafkaReader struct {
	cl      *kgo.Client
	adm     *kadm.Client
	next    map[int32]int64 // the offset after the last record (or marker) read
	records []*kgo.Record
}

func newKafkaReader(s *system) (*kafkaReader, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.kafkaLink.addr()), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return nil, err
	}
	return &kafkaReader{cl: cl, adm: kadm.NewClient(cl), next: map[int32]int64{}}, nil
}

func (k *kafkaReader) close() { k.cl.Close() }

// catchUp reads until it has reached the last stable offset of every
// partition as it was when called.
func (k *kafkaReader) catchUp(ctx context.Context) error {
	ends, err := k.adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return err
	}
	if err := ends.Error(); err != nil {
		return err
	}
	behind := func() bool {
		b := false
		ends.Each(func(o kadm.ListedOffset) {
			if k.next[o.Partition] < o.Offset {
				b = true
			}
		})
		return b
	}
	for behind() {
		fetches := k.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fetches.EachError(func(t string, p int32, err error) {}) // retried by the client
		fetches.EachRecord(func(r *kgo.Record) {
			k.next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				k.records = append(k.records, r)
			}
		})
	}
	return nil
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// checkKafka compares the topic with the store.
func checkKafka(st *store, records []*kgo.Record, nparts int) []*invariant {
	missing := &invariant{name: "stored events not in Kafka (lost)"}
	doubled := &invariant{name: "events in Kafka more than once (doubled)"}
	reordered := &invariant{name: "streams out of version order in Kafka (reordered)"}
	partition := &invariant{name: "records not on their key's partition"}
	phantom := &invariant{name: "records in Kafka not stored, or not as stored"}

	part := kgo.StickyKeyPartitioner(nil).ForTopic(topic)
	seen := map[string]int{}
	last := map[string]int64{}
	for _, r := range records {
		id := header(r, "ce_id")
		e := st.byID[id]
		if e == nil {
			phantom.add("record %s@%d/%d (key %s, ce_id %q) is not a stored event", r.Topic, r.Partition, r.Offset, r.Key, id)
			continue
		}
		seen[id]++
		if seen[id] > 1 {
			doubled.add("event %s (%s@%d) again at partition %d offset %d", id, e.Stream, e.Version, r.Partition, r.Offset)
			continue
		}
		version, _ := strconv.ParseInt(header(r, "ce_streamversion"), 10, 64)
		if string(r.Key) != e.Stream || header(r, "ce_subject") != e.Stream || version != e.Version || header(r, "ce_type") != e.Type {
			phantom.add("record of event %s says %s@%d (%s), the store %s@%d (%s)", id, r.Key, version, header(r, "ce_type"), e.Stream, e.Version, e.Type)
		}
		if len(r.Value) < 5 || r.Value[0] != 0 || int32(binary.BigEndian.Uint32(r.Value[1:5])) != st.schemaID[e.Fingerprint] || !bytes.Equal(r.Value[5:], e.Data) {
			phantom.add("record of event %s: its value is not the stored data in the Confluent wire format", id)
		}
		if want := int32(part.Partition(&kgo.Record{Key: r.Key}, nparts)); r.Partition != want {
			partition.add("event %s of %s on partition %d, its key's is %d", id, e.Stream, r.Partition, want)
		}
		if e.Version != last[e.Stream]+1 {
			reordered.add("%s: version %d after %d (partition %d offset %d)", e.Stream, e.Version, last[e.Stream], r.Partition, r.Offset)
		}
		last[e.Stream] = max(last[e.Stream], e.Version)
	}
	for _, e := range st.events {
		if seen[e.ID] == 0 {
			missing.add("event %s (%s@%d)", e.ID, e.Stream, e.Version)
		}
	}
	return []*invariant{missing, doubled, reordered, partition, phantom}
}

// The read models, as the checker replays them from the store: rows
// rendered as text, by key.

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano)
}

func fmtText(s *string) string {
	if s == nil {
		return "-"
	}
	return strconv.Quote(*s)
}

func fmtDecimal(s string) string {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return "bad:" + s
	}
	return r.RatString()
}

// readModels holds each table's rows: table → key → row.
type readModels map[string]map[string]string

// replay folds the stored events into the rows that order_summary and
// shipped_items must hold.
func replay(st *store) readModels {
	type item struct {
		qty             int64
		price, currency string
	}
	type order struct {
		customer, address *string
		created, shipped  *time.Time
		isShipped         bool
		count, version    int64
		total             big.Rat
		items             map[string]*item
		itemOrder         []string
	}
	orders := map[string]*order{}
	var ids []string
	for _, e := range st.events {
		id, _ := strings.CutPrefix(e.Stream, "Order-")
		o := orders[id]
		if o == nil {
			o = &order{items: map[string]*item{}}
			orders[id] = o
			ids = append(ids, id)
		}
		o.version = max(o.version, e.Version)
		d := e.Native
		switch e.Type {
		case "OrderCreated":
			c := d["customerId"].(string)
			t := d["timestamp"].(time.Time)
			o.customer, o.created = &c, &t
		case "OrderItemAdded":
			qty := int64(d["quantity"].(int32))
			price := d["price"].(*big.Rat)
			currency := "USD"
			if c, ok := d["currency"].(string); ok && c != "" {
				currency = c
			}
			itemID := d["itemId"].(string)
			o.count += qty
			o.total.Add(&o.total, new(big.Rat).Mul(price, new(big.Rat).SetInt64(qty)))
			it := o.items[itemID]
			if it == nil {
				it = &item{}
				o.items[itemID] = it
				o.itemOrder = append(o.itemOrder, itemID)
			}
			it.qty += qty
			it.price, it.currency = price.RatString(), currency
		case "OrderShipped":
			a := d["shippingAddress"].(string)
			t := d["timestamp"].(time.Time)
			o.address, o.shipped, o.isShipped = &a, &t, true
		}
	}
	rm := readModels{"order_summary": {}, "order_summary_items": {}, "shipped_items": {}, "shipped_items_pending": {}}
	for _, id := range ids {
		o := orders[id]
		status := "open"
		if o.isShipped {
			status = "shipped"
		}
		rm["order_summary"][id] = fmt.Sprintf("customer=%s status=%s items=%d total=%s address=%s created=%s shipped=%s version=%d",
			fmtText(o.customer), status, o.count, o.total.RatString(), fmtText(o.address), fmtTime(o.created), fmtTime(o.shipped), o.version)
		for _, itemID := range o.itemOrder {
			it := o.items[itemID]
			rm["order_summary_items"][id+"/"+itemID] = fmt.Sprintf("quantity=%d price=%s currency=%s", it.qty, it.price, it.currency)
			// The load adds items only before an order ships, so every
			// item is either pending or shipped with its order.
			if o.isShipped {
				rm["shipped_items"][id+"/"+itemID] = fmt.Sprintf("quantity=%d address=%s shipped=%s", it.qty, fmtText(o.address), fmtTime(o.shipped))
			} else {
				rm["shipped_items_pending"][id+"/"+itemID] = fmt.Sprintf("quantity=%d", it.qty)
			}
		}
	}
	return rm
}

// readReadModels reads the read-model tables, rendered as replay renders
// them.
func readReadModels(ctx context.Context, s *system) (readModels, error) {
	rm := readModels{}
	queries := map[string]struct {
		sql  string
		scan func(row func(...any) error) (string, string, error)
	}{
		"order_summary": {`SELECT order_id, customer_id, status, item_count, total::text, shipping_address, created_at, shipped_at, version FROM readmodel.order_summary`,
			func(scan func(...any) error) (string, string, error) {
				var id, status, total string
				var customer, address *string
				var created, shipped *time.Time
				var count, version int64
				err := scan(&id, &customer, &status, &count, &total, &address, &created, &shipped, &version)
				return id, fmt.Sprintf("customer=%s status=%s items=%d total=%s address=%s created=%s shipped=%s version=%d",
					fmtText(customer), status, count, fmtDecimal(total), fmtText(address), fmtTime(created), fmtTime(shipped), version), err
			}},
		"order_summary_items": {`SELECT order_id, item_id, quantity, price::text, currency FROM readmodel.order_summary_items`,
			func(scan func(...any) error) (string, string, error) {
				var order, item, price, currency string
				var qty int64
				err := scan(&order, &item, &qty, &price, &currency)
				return order + "/" + item, fmt.Sprintf("quantity=%d price=%s currency=%s", qty, fmtDecimal(price), currency), err
			}},
		"shipped_items": {`SELECT order_id, item_id, quantity, shipping_address, shipped_at FROM readmodel.shipped_items`,
			func(scan func(...any) error) (string, string, error) {
				var order, item, address string
				var qty int64
				var shipped time.Time
				err := scan(&order, &item, &qty, &address, &shipped)
				return order + "/" + item, fmt.Sprintf("quantity=%d address=%s shipped=%s", qty, fmtText(&address), fmtTime(&shipped)), err
			}},
		"shipped_items_pending": {`SELECT order_id, item_id, quantity FROM readmodel.shipped_items_pending`,
			func(scan func(...any) error) (string, string, error) {
				var order, item string
				var qty int64
				err := scan(&order, &item, &qty)
				return order + "/" + item, fmt.Sprintf("quantity=%d", qty), err
			}},
	}
	for table, q := range queries {
		rows, err := s.db.Query(ctx, q.sql)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", table, err)
		}
		rm[table] = map[string]string{}
		for rows.Next() {
			k, v, err := q.scan(rows.Scan)
			if err != nil {
				rows.Close()
				return nil, fmt.Errorf("%s: %w", table, err)
			}
			rm[table][k] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", table, err)
		}
	}
	return rm, nil
}

// compareReadModels counts the rows of each table that differ from the
// replay: wrong, missing or not there at all in the replay.
func compareReadModels(want, got readModels) []*invariant {
	var out []*invariant
	tables := make([]string, 0, len(want))
	for t := range want {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, table := range tables {
		v := &invariant{name: "read-model rows wrong: " + table}
		for k, w := range want[table] {
			switch g, ok := got[table][k]; {
			case !ok:
				v.add("%s: missing, want %s", k, w)
			case g != w:
				v.add("%s: %s, want %s", k, g, w)
			}
		}
		for k, g := range got[table] {
			if _, ok := want[table][k]; !ok {
				v.add("%s: %s, which the store does not give", k, g)
			}
		}
		out = append(out, v)
	}
	return out
}
