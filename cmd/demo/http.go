package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// api is the HTTP API of one process; its errors are blamed on it, so that
// a failure shows its log.
type api struct {
	proc   *process
	base   string // http://host:port
	client *http.Client
}

func newAPI(p *process, base string) *api {
	return &api{proc: p, base: base, client: &http.Client{Timeout: 30 * time.Second}}
}

// reply is an answer: its status, its raw body and, for a JSON object, the
// object.
type reply struct {
	status int
	raw    []byte
	body   map[string]any
}

// err returns the error object of an error answer.
func (r reply) err() map[string]any {
	e, _ := r.body["error"].(map[string]any)
	return e
}

// version returns a number of the body, such as firstVersion.
func (r reply) version(key string) int64 {
	f, _ := r.body[key].(float64)
	return int64(f)
}

func (a *api) do(ctx context.Context, method, path, contentType string, body []byte) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return reply{}, blame(fmt.Errorf("%s %s: %w", method, path, err), a.proc)
	}
	defer resp.Body.Close()
	r := reply{status: resp.StatusCode}
	if r.raw, err = io.ReadAll(resp.Body); err != nil {
		return reply{}, blame(fmt.Errorf("%s %s: %w", method, path, err), a.proc)
	}
	json.Unmarshal(r.raw, &r.body) // absent for a body that is not an object
	return r, nil
}

// get reads path, which must answer 200, into v.
func (a *api) get(ctx context.Context, path string, v any) error {
	r, err := a.do(ctx, http.MethodGet, path, "", nil)
	if err != nil {
		return err
	}
	if r.status != http.StatusOK {
		return blame(fmt.Errorf("GET %s%s: %d %s", a.base, path, r.status, bytes.TrimSpace(r.raw)), a.proc)
	}
	if err := json.Unmarshal(r.raw, v); err != nil {
		return blame(fmt.Errorf("GET %s%s: %w", a.base, path, err), a.proc)
	}
	return nil
}

// append appends events (JSON objects, see event) to stream.
func (a *api) append(ctx context.Context, stream string, expected int64, events ...string) (reply, error) {
	return a.do(ctx, http.MethodPost, "/v1/streams/"+stream+"/events", "application/json", appendBody(expected, events))
}

// mustAppend appends and returns the answer, which must be 201 or 200.
func (a *api) mustAppend(ctx context.Context, stream string, expected int64, events ...string) (reply, error) {
	r, err := a.append(ctx, stream, expected, events...)
	if err == nil && r.status != http.StatusCreated && r.status != http.StatusOK {
		err = blame(fmt.Errorf("append to %s: %d %s", stream, r.status, bytes.TrimSpace(r.raw)), a.proc)
	}
	return r, err
}

// appendBody is an append's body, laid out for people: one event a line.
func appendBody(expected int64, events []string) []byte {
	return fmt.Appendf(nil, "{\"expectedVersion\": %d, \"events\": [\n  %s]}", expected, strings.Join(events, ",\n  "))
}

// streamPage is a page of a stream, as GET /v1/streams/{id}/events gives it.
type streamPage struct {
	Version int64 `json:"version"`
	Events  []storedEvent
	Next    any // a version for a stream, a cursor for $all
}

type storedEvent struct {
	ID       string          `json:"id"`
	StreamID string          `json:"streamId"`
	Type     string          `json:"type"`
	Version  int64           `json:"version"`
	SchemaID int             `json:"schemaId"`
	Data     json.RawMessage `json:"data"`
}

// order is an order as the read API gives it.
type order struct {
	OrderID string `json:"orderId"`
	Status  string `json:"status"`
	Items   []struct {
		ItemID   string `json:"itemId"`
		Quantity int64  `json:"quantity"`
		Price    string `json:"price"`
		Currency string `json:"currency"`
	} `json:"items"`
	Total   string `json:"total"`
	Version int64  `json:"version"`
}

type shippedItem struct {
	OrderID         string    `json:"orderId"`
	ItemID          string    `json:"itemId"`
	Quantity        int64     `json:"quantity"`
	ShippingAddress string    `json:"shippingAddress"`
	ShippedAt       time.Time `json:"shippedAt"`
}

// metric is one sample of a Prometheus text exposition.
type metric struct {
	labels map[string]string
	value  float64
}

// metrics reads the samples of the metric called name from /metrics.
func (a *api) metrics(ctx context.Context, name string) ([]metric, error) {
	r, err := a.do(ctx, http.MethodGet, "/metrics", "", nil)
	if err != nil {
		return nil, err
	}
	var out []metric
	sc := bufio.NewScanner(bytes.NewReader(r.raw))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		m := metric{labels: map[string]string{}}
		if labels, after, ok := strings.Cut(strings.TrimPrefix(rest, "{"), "}"); ok && rest[0] == '{' {
			for _, kv := range strings.Split(labels, ",") {
				if k, v, ok := strings.Cut(kv, "="); ok {
					m.labels[k] = strings.Trim(v, `"`)
				}
			}
			rest = after
		}
		if m.value, err = strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
			out = append(out, m)
		}
	}
	return out, nil
}

// sum adds the samples whose labels include want.
func sum(ms []metric, want map[string]string) float64 {
	var total float64
next:
	for _, m := range ms {
		for k, v := range want {
			if m.labels[k] != v {
				continue next
			}
		}
		total += m.value
	}
	return total
}

// event returns an event of an append's body: its type and its data,
// whose fields are given as name, value pairs, kept in that order.
func event(typ string, fields ...any) string {
	return fmt.Sprintf(`{"type": %q, "data": %s}`, typ, object(fields...))
}

// eventWithID is event with the id the client chose for it.
func eventWithID(id, typ string, fields ...any) string {
	return fmt.Sprintf(`{"id": %q, "type": %q, "data": %s}`, id, typ, object(fields...))
}

// about names the data subject of an event made by event or eventWithID:
// the person its personal fields (a shipping address) are about.
func about(subject, event string) string {
	return strings.TrimSuffix(event, "}") + fmt.Sprintf(`, "metadata": {"dataSubject": %q}}`, subject)
}

// object returns a JSON object of name, value pairs, in their order.
func object(fields ...any) string {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i+1 < len(fields); i += 2 {
		if i > 0 {
			b.WriteString(", ")
		}
		k, _ := json.Marshal(fields[i])
		v, _ := json.Marshal(fields[i+1])
		fmt.Fprintf(&b, "%s: %s", k, v)
	}
	b.WriteString("}")
	return b.String()
}

// indentJSON lays JSON out for people, every line indented by prefix.
func indentJSON(raw []byte, prefix string) string {
	var b bytes.Buffer
	if err := json.Indent(&b, bytes.TrimSpace(raw), prefix, "  "); err != nil {
		return prefix + string(raw)
	}
	return prefix + b.String()
}
