package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/linkedin/goavro/v2"

	"github.com/strata-events/strata/client"
	"github.com/strata-events/strata/internal/harness"
	"github.com/strata-events/strata/internal/kafka"
)

// The bank of the transfer test: its event schemas and a read model of
// balances, as a user of Strata would write them.
var bankSchemas = map[string]string{
	"AccountOpened":   `{"type": "record", "name": "AccountOpened", "namespace": "example.bank", "fields": [{"name": "accountId", "type": "string"}, {"name": "amount", "type": "long"}]}`,
	"AccountDebited":  `{"type": "record", "name": "AccountDebited", "namespace": "example.bank", "fields": [{"name": "accountId", "type": "string"}, {"name": "transferId", "type": "string"}, {"name": "amount", "type": "long"}]}`,
	"AccountCredited": `{"type": "record", "name": "AccountCredited", "namespace": "example.bank", "fields": [{"name": "accountId", "type": "string"}, {"name": "transferId", "type": "string"}, {"name": "amount", "type": "long"}]}`,
}

const balancesProjection = `-- strata:projection account_balances
-- strata:categories Account

-- strata:setup
CREATE TABLE IF NOT EXISTS account_balances (account_id text PRIMARY KEY, balance bigint NOT NULL);

-- strata:on AccountOpened
INSERT INTO account_balances (account_id, balance) VALUES (:accountId, :amount);

-- strata:on AccountDebited
UPDATE account_balances SET balance = balance - :amount WHERE account_id = :accountId;

-- strata:on AccountCredited
UPDATE account_balances SET balance = balance + :amount WHERE account_id = :accountId;
`

// bankEvent is a bank event as the test reads it, from $all or Kafka.
type bankEvent struct {
	id, stream, typ string
	version         int64
	transfer        string
	amount          int64
}

// signed is the event's change to its account's balance.
func (e bankEvent) signed() int64 {
	if e.typ == "AccountDebited" {
		return -e.amount
	}
	return e.amount
}

// TestTransfersConserveMoney runs a bank on multi-stream appends through
// the writer: 50 accounts are opened in one append, then 16 clients move
// money between them, each transfer a debit and a credit appended together
// with both accounts expected at the versions read, retried on conflict;
// then 16 clients race to drain one account a unit at a time. $all, read
// by cursor while it grows, holds each transfer's two events together,
// so the total is the same after every transfer; no balance ever goes
// below zero, which a conflict gone unnoticed would make it do; the drained
// account pays out exactly its balance, at versions each taken once. Kafka
// holds every event once, each account in order, and the same total; so
// does the read model.
func TestTransfersConserveMoney(t *testing.T) {
	schemas := t.TempDir()
	originals, _ := filepath.Glob("../schemas/*.avsc")
	for _, f := range originals {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(schemas, filepath.Base(f)), b, 0o644)
	}
	for name, schema := range bankSchemas {
		os.WriteFile(filepath.Join(schemas, name+".avsc"), []byte(schema), 0o644)
	}
	projections := t.TempDir()
	os.WriteFile(filepath.Join(projections, "account_balances.sql"), []byte(balancesProjection), 0o644)

	writerBin, env, dbURL, _ := prepareStore(t, "STRATA_SCHEMAS_DIR="+schemas)
	w := serveWriter(t, writerBin, env)
	_, readModel := harness.NewSchema(t)
	projectorBin := build(t, "projector")
	startProjector(t, projectorBin, append(env, "STRATA_READMODEL_SCHEMA="+readModel, "STRATA_PROJECTIONS_DIR="+projections,
		"STRATA_GROUP_PREFIX="+harness.UniqueName("bank")+"."))
	c, err := client.New(w.url, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	const accounts, opening, clients, transfersEach = 50, 1000, 16, 25
	const hot, hotBalance = "Account-hot", 200
	account := func(i int) string { return fmt.Sprintf("Account-%02d", i) }
	open := func(stream string, amount int64) client.StreamAppend {
		return client.StreamAppend{StreamID: stream, ExpectedVersion: client.NoStream, Events: []client.Event{{Type: "AccountOpened",
			Data: map[string]any{"accountId": stream, "amount": amount}}}}
	}
	var opens []client.StreamAppend
	for i := range accounts {
		opens = append(opens, open(account(i), opening))
	}
	opens = append(opens, open(hot, hotBalance))
	if _, err := c.AppendMulti(ctx, opens, nil); err != nil {
		t.Fatalf("open the accounts: %v", err)
	}
	const total = accounts*opening + hotBalance

	// An $all reader, from the beginning, while the transfers run.
	var read []bankEvent
	stop := make(chan struct{})
	readerDone := make(chan error, 1)
	go func() { readerDone <- readAllBank(ctx, c, stop, &read) }()

	// balance reads an account's stream: its balance and version.
	balance := func(stream string) (int64, int64, error) {
		var sum int64
		var version int64
		for from := int64(1); ; {
			page, err := c.ReadStream(ctx, stream, from, client.MaxReadLimit)
			if err != nil {
				return 0, 0, err
			}
			for _, e := range page.Events {
				var d struct{ Amount int64 }
				if err := json.Unmarshal(e.Data, &d); err != nil {
					return 0, 0, err
				}
				sum += bankEventOf(e, d.Amount).signed()
			}
			version = page.Version
			if len(page.Events) < client.MaxReadLimit {
				return sum, version, nil
			}
			from = page.Next
		}
	}
	// transfer moves amount(balance of from) from one account to another,
	// deciding on the versions it read; it reports a conflict as such.
	var transferIDs atomic.Int64
	transfer := func(from, to string, amount func(int64) int64) (client.AppendResult, bool, error) {
		fromBalance, fromVersion, err := balance(from)
		if err != nil {
			return client.AppendResult{}, false, err
		}
		_, toVersion, err := balance(to)
		if err != nil {
			return client.AppendResult{}, false, err
		}
		n := amount(fromBalance)
		if n <= 0 {
			return client.AppendResult{}, false, nil
		}
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond) // others decide meanwhile
		id := fmt.Sprintf("t%d", transferIDs.Add(1))
		results, err := c.AppendMulti(ctx, []client.StreamAppend{
			{StreamID: from, ExpectedVersion: client.ExpectedVersion(fromVersion), Events: []client.Event{{Type: "AccountDebited",
				Data: map[string]any{"accountId": from, "transferId": id, "amount": n}}}},
			{StreamID: to, ExpectedVersion: client.ExpectedVersion(toVersion), Events: []client.Event{{Type: "AccountCredited",
				Data: map[string]any{"accountId": to, "transferId": id, "amount": n}}}},
		}, nil)
		if client.IsWrongExpectedVersion(err) {
			return client.AppendResult{}, true, nil
		}
		if err != nil {
			return client.AppendResult{}, false, err
		}
		return results[0], false, nil
	}

	// The workload: random transfers among the 50, a third of them
	// touching one of three busy accounts, so that conflicts come.
	var conflicts, done atomic.Int64
	var wg sync.WaitGroup
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(k), 42))
			pick := func() int {
				if rng.IntN(3) == 0 {
					return rng.IntN(3)
				}
				return rng.IntN(accounts)
			}
			for made := 0; made < transfersEach; {
				from, to := pick(), pick()
				if from == to {
					continue
				}
				_, conflict, err := transfer(account(from), account(to), func(b int64) int64 { return min(b, 1+rng.Int64N(100)) })
				switch {
				case err != nil:
					t.Errorf("transfer: %v", err)
					return
				case conflict:
					conflicts.Add(1)
				default:
					made++
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		close(stop)
		<-readerDone
		return
	}
	if conflicts.Load() == 0 {
		t.Errorf("%d transfers met no conflict: the workload did not contend", done.Load())
	}
	t.Logf("%d transfers among %d accounts by %d clients, %d conflicts retried", done.Load(), accounts, clients, conflicts.Load())

	// The contention: 16 clients drain the hot account, a unit at a time,
	// until each finds it empty.
	var hotVersions []int64
	var hotConflicts atomic.Int64
	var mu sync.Mutex
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				res, conflict, err := transfer(hot, account(k), func(b int64) int64 { return min(b, 1) })
				switch {
				case err != nil:
					t.Errorf("drain: %v", err)
					return
				case conflict:
					hotConflicts.Add(1)
				case res.StreamID == "":
					return // empty
				default:
					mu.Lock()
					hotVersions = append(hotVersions, res.LastVersion)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	slices.Sort(hotVersions)
	want := make([]int64, hotBalance)
	for i := range want {
		want[i] = int64(i + 2) // after the opening
	}
	if !slices.Equal(hotVersions, want) {
		t.Errorf("the hot account paid out at versions %v, want each of 2..%d once", hotVersions, hotBalance+1)
	}
	if hotConflicts.Load() == 0 {
		t.Errorf("draining the hot account met no conflict")
	}
	t.Logf("%d clients drained %s in %d debits, %d conflicts detected", clients, hot, len(hotVersions), hotConflicts.Load())

	// $all, read as it grew: every event once, each account in order,
	// each transfer's two events together, the total the same after each,
	// no balance below zero.
	close(stop)
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	wantEvents := accounts + 1 + 2*(int(done.Load())+len(hotVersions))
	if len(read) != wantEvents {
		t.Fatalf("$all holds %d events, want %d", len(read), wantEvents)
	}
	balances := checkBank(t, "$all", read, total, true)
	if balances[hot] != 0 {
		t.Errorf("the hot account ends at %d, want 0", balances[hot])
	}

	// Kafka: every event once, each account in order, the same balances.
	topic := envValue(env, "STRATA_TOPIC_PREFIX") + "Account"
	var published []bankEvent
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		published = kafkaBank(t, w.url, consumeTopic(t, harness.KafkaBrokers(t), topic))
		if len(published) >= wantEvents || time.Now().After(deadline) {
			break
		}
	}
	if len(published) != wantEvents {
		t.Fatalf("Kafka's %s holds %d records, want %d", topic, len(published), wantEvents)
	}
	if got := checkBank(t, "Kafka", published, total, false); !maps.Equal(got, balances) {
		t.Errorf("Kafka's balances %v differ from $all's %v", got, balances)
	}

	// The read model, once the projector has caught up.
	db, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var model map[string]int64
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		model = map[string]int64{}
		rows, err := db.Query(ctx, fmt.Sprintf("SELECT account_id, balance FROM %s.account_balances", pgx.Identifier{readModel}.Sanitize()))
		if err == nil {
			var id string
			var b int64
			_, err = pgx.ForEachRow(rows, []any{&id, &b}, func() error { model[id] = b; return nil })
		}
		if err == nil && maps.Equal(model, balances) || time.Now().After(deadline) {
			break
		}
	}
	var sum int64
	for _, b := range model {
		sum += b
	}
	if !maps.Equal(model, balances) || sum != total {
		t.Errorf("the read model holds %v (total %d), want $all's balances %v (total %d)", model, sum, balances, total)
	}
}

func bankEventOf(e client.RecordedEvent, amount int64) bankEvent {
	var d struct{ TransferID string }
	json.Unmarshal(e.Data, &d)
	return bankEvent{id: e.ID, stream: e.StreamID, typ: e.Type, version: e.Version, transfer: d.TransferID, amount: amount}
}

// readAllBank pages $all by cursor into out until stop is closed and a
// page after it comes back empty.
func readAllBank(ctx context.Context, c *client.Client, stop chan struct{}, out *[]bankEvent) error {
	var after string
	stopping := false
	for {
		page, err := c.ReadAll(ctx, after, 100)
		if err != nil {
			return err
		}
		for _, e := range page.Events {
			var d struct{ Amount int64 }
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return fmt.Errorf("event %s: %w", e.ID, err)
			}
			*out = append(*out, bankEventOf(e, d.Amount))
		}
		after = page.Next
		if len(page.Events) > 0 {
			continue
		}
		if stopping {
			return nil
		}
		select {
		case <-stop:
			stopping = true // one more read after the last transfer
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// kafkaBank decodes the records of the Account topic with goavro, by the
// schemas the writer's registry gives for their ids.
func kafkaBank(t *testing.T, writerURL string, messages []kafka.Message) []bankEvent {
	t.Helper()
	codecs := map[int]*goavro.Codec{}
	var out []bankEvent
	for _, m := range messages {
		codec := codecs[m.SchemaID]
		if codec == nil {
			var schema struct{ Schema string }
			if getJSON(t, fmt.Sprintf("%s/registry/schemas/ids/%d", writerURL, m.SchemaID), &schema) != http.StatusOK {
				t.Fatalf("schema %d is not in the registry", m.SchemaID)
			}
			var err error
			if codec, err = goavro.NewCodec(schema.Schema); err != nil {
				t.Fatal(err)
			}
			codecs[m.SchemaID] = codec
		}
		native, _, err := codec.NativeFromBinary(m.Data)
		if err != nil {
			t.Fatalf("record %s: %v", m.ID, err)
		}
		r := native.(map[string]any)
		transfer, _ := r["transferId"].(string)
		out = append(out, bankEvent{id: m.ID.String(), stream: m.StreamID.String(), typ: m.Type, version: m.Version,
			transfer: transfer, amount: r["amount"].(int64)})
	}
	return out
}

// checkBank checks events read in order: each once, each account in
// version order, no balance below zero; in a read of $all (together),
// each transfer's two events next to each other and the total the same
// after every transfer. It returns the balances.
func checkBank(t *testing.T, name string, events []bankEvent, total int64, together bool) map[string]int64 {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]int64{}
	balances := map[string]int64{}
	var sum int64
	for _, e := range events {
		if seen[e.id] {
			t.Errorf("%s: event %s twice", name, e.id)
		}
		seen[e.id] = true
		if e.version != last[e.stream]+1 {
			t.Errorf("%s: %s@%d after version %d", name, e.stream, e.version, last[e.stream])
		}
		last[e.stream] = e.version
		balances[e.stream] += e.signed()
		sum += e.signed()
		if balances[e.stream] < 0 {
			t.Errorf("%s: %s goes below zero, to %d, at version %d: a conflict went unnoticed", name, e.stream, balances[e.stream], e.version)
		}
	}
	if together {
		// The openings came in one append, so they come first; then each
		// transfer's two events, in pairs, the total the same after each.
		sum = 0
		i := 0
		for ; i < len(events) && events[i].typ == "AccountOpened"; i++ {
			sum += events[i].signed()
		}
		if sum != total {
			t.Errorf("%s: the openings come to %d, want %d", name, sum, total)
		}
		for ; i < len(events); i += 2 {
			if i+1 == len(events) || events[i].transfer == "" || events[i].transfer != events[i+1].transfer {
				t.Fatalf("%s: the events of transfer %s are not together, at %d", name, events[i].transfer, i)
			}
			if sum += events[i].signed() + events[i+1].signed(); sum != total {
				t.Errorf("%s: after transfer %s the total is %d, want %d", name, events[i].transfer, sum, total)
			}
		}
	}
	if sum != total {
		t.Errorf("%s: the total ends at %d, want %d", name, sum, total)
	}
	return balances
}
