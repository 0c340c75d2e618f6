package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/subscribe"
)

// CodeTooManySubscriptions refuses a subscription beyond the limits (429).
const CodeTooManySubscriptions = "too_many_subscriptions"

// Defaults of the subscription options.
const (
	DefaultMaxSubscriptions         = 10000
	DefaultMaxSubscriptionsPerToken = 1000
	DefaultHeartbeat                = 15 * time.Second
	// subscriptionWriteTimeout bounds one write to a subscriber: a
	// client that reads nothing for this long is disconnected.
	subscriptionWriteTimeout = 30 * time.Second
)

// subscriptions counts the open ones, in all and per token, and holds
// their metrics.
type subscriptions struct {
	hub              *subscribe.Hub
	max, maxPerToken int
	heartbeat        time.Duration
	mu               sync.Mutex
	open             int
	byToken          map[string]int
	openGauge        prometheus.Gauge
	sent             prometheus.Counter
	disconnects      *prometheus.CounterVec
}

func newSubscriptions(hub *subscribe.Hub, opts Options) *subscriptions {
	s := &subscriptions{
		hub: hub, max: opts.MaxSubscriptions, maxPerToken: opts.MaxSubscriptionsPerToken, heartbeat: opts.Heartbeat,
		byToken: map[string]int{},
		openGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strata_subscriptions_open",
			Help: "Open live subscriptions (Server-Sent Events).",
		}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_subscription_events_sent_total",
			Help: "Events sent to live subscriptions.",
		}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_subscription_disconnects_total",
			Help: "Ended subscriptions by reason: client (the client left), too_slow (its buffer filled), write_timeout, shutdown, error.",
		}, []string{"reason"}),
	}
	if s.max <= 0 {
		s.max = DefaultMaxSubscriptions
	}
	if s.maxPerToken <= 0 {
		s.maxPerToken = DefaultMaxSubscriptionsPerToken
	}
	if s.heartbeat <= 0 {
		s.heartbeat = DefaultHeartbeat
	}
	for _, r := range []string{"client", "too_slow", "write_timeout", "shutdown", "error"} {
		s.disconnects.WithLabelValues(r)
	}
	opts.Metrics.MustRegister(s.openGauge, s.sent, s.disconnects)
	return s
}

func (s *subscriptions) acquire(tok Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.open >= s.max:
		return eventstore.Errorf(CodeTooManySubscriptions, "the writer serves at most %d subscriptions at once; try again later", s.max)
	case s.byToken[tok.Principal] >= s.maxPerToken:
		return eventstore.Errorf(CodeTooManySubscriptions, "a token may hold at most %d subscriptions at once; close one first", s.maxPerToken)
	}
	s.open++
	s.byToken[tok.Principal]++
	s.openGauge.Inc()
	return nil
}

func (s *subscriptions) release(tok Token, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open--
	if s.byToken[tok.Principal]--; s.byToken[tok.Principal] == 0 {
		delete(s.byToken, tok.Principal)
	}
	s.openGauge.Dec()
	s.disconnects.WithLabelValues(reason).Inc()
}

func (s *Server) subscribeAll(w http.ResponseWriter, r *http.Request, tok Token) error {
	return s.subscribe(w, r, tok, subscribe.Request{})
}

func (s *Server) subscribeCategory(w http.ResponseWriter, r *http.Request, tok Token) error {
	category := r.PathValue("category")
	if err := eventstore.ValidateCategory(category); err != nil {
		return err
	}
	return s.subscribe(w, r, tok, subscribe.Request{Category: category})
}

func (s *Server) subscribeStream(w http.ResponseWriter, r *http.Request, tok Token) error {
	stream, err := eventstore.ParseStreamID(r.PathValue("streamId"))
	if err != nil {
		return err
	}
	return s.subscribe(w, r, tok, subscribe.Request{Stream: stream})
}

// subscribe serves a subscription as Server-Sent Events: each event is a
// message whose id is the position after it (a cursor, or for a stream
// its version) and whose data is the event's JSON as reads return it. A
// comment is sent every heartbeat while nothing happens. It ends with a
// message of type error saying why, when the subscriber is too slow or the
// writer shuts down, and resumes from Last-Event-ID.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request, tok Token, req subscribe.Request) error {
	subs := s.subs
	if subs == nil {
		return eventstore.Errorf(CodeNotFound, "this store does not serve subscriptions")
	}
	if err := subscriptionRequest(r, &req); err != nil {
		return err
	}
	if req.Stream.IsZero() { // a bad position token is refused before the stream starts
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.Timeout)
		_, err := s.tailer.ReadTail(ctx, req.Category, req.After, 1)
		cancel()
		if err != nil {
			return err
		}
	}
	if err := subs.acquire(tok); err != nil {
		return err
	}
	sub, err := subs.hub.Subscribe(req)
	if err != nil {
		subs.release(tok, "error")
		return err
	}
	defer sub.Close()
	reason := s.stream(w, r, sub)
	subs.release(tok, reason)
	return nil
}

// subscriptionRequest reads the position (after or from, or Last-Event-ID,
// which wins) and the types filter.
func subscriptionRequest(r *http.Request, req *subscribe.Request) error {
	params := r.URL.Query()
	if err := onlyOnce(params, "after", "from", "types"); err != nil {
		return err
	}
	last := r.Header.Get("Last-Event-ID")
	if req.Stream.IsZero() {
		if params.Has("from") {
			return eventstore.Errorf(eventstore.CodeInvalidRequest, "from is for a stream's subscription; $all and categories take after (a position token)")
		}
		req.After = eventstore.Cursor(params.Get("after"))
		if last != "" {
			req.After = eventstore.Cursor(last)
		}
	} else {
		if params.Has("after") {
			return eventstore.Errorf(eventstore.CodeInvalidRequest, "after is for $all and categories; a stream's subscription takes from (a version)")
		}
		if v := params.Get("from"); v != "" {
			from, err := strconv.ParseInt(v, 10, 64)
			if err != nil || from < 1 {
				return eventstore.Errorf(eventstore.CodeInvalidRequest, "from must be a version >= 1, not %q", truncate(v, 40))
			}
			req.From = from
		}
		if last != "" {
			v, err := strconv.ParseInt(last, 10, 64)
			if err != nil || v < 0 {
				return eventstore.Errorf(eventstore.CodeInvalidRequest, "Last-Event-ID of a stream's subscription must be a version, not %q", truncate(last, 40))
			}
			req.From = v + 1
		}
	}
	if v := params.Get("types"); v != "" {
		for _, t := range strings.Split(v, ",") {
			if t == "" {
				return eventstore.Errorf(eventstore.CodeInvalidRequest, "types must be a comma-separated list of event types, not %q", truncate(v, 80))
			}
			req.Types = append(req.Types, t)
		}
	}
	return nil
}

// stream writes the subscription until it ends and returns why.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, sub *subscribe.Subscription) (reason string) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // proxies: do not buffer
	w.WriteHeader(http.StatusOK)
	var buf bytes.Buffer
	write := func() bool {
		_ = rc.SetWriteDeadline(time.Now().Add(subscriptionWriteTimeout))
		_, err := w.Write(buf.Bytes())
		if err == nil {
			err = rc.Flush()
		}
		buf.Reset()
		return err == nil
	}
	buf.WriteString(": subscribed\n\n")
	if !write() {
		return "write_timeout"
	}
	ctx, stop := context.WithCancel(r.Context())
	defer stop()
	shutdown := context.AfterFunc(s.subs.hub.Context(), stop)
	defer shutdown()
	failures := 0
	for {
		wctx, cancel := context.WithTimeout(ctx, s.subs.heartbeat)
		items, err := sub.Next(wctx)
		cancel()
		switch {
		case err == nil:
			failures = 0
			writeItems(&buf, items)
			if !write() {
				return "write_timeout"
			}
			s.subs.sent.Add(float64(len(items)))
			continue
		case errors.Is(err, subscribe.ErrTooSlow):
			endWith(&buf, eventstore.Errorf("too_slow", "%v", err))
			write()
			return "too_slow"
		case s.subs.hub.Context().Err() != nil:
			endWith(&buf, eventstore.Errorf(eventstore.CodeUnavailable, "the writer is shutting down; resume from the last event id received"))
			write()
			return "shutdown"
		case r.Context().Err() != nil:
			return "client"
		case errors.Is(err, context.DeadlineExceeded) && wctx.Err() != nil:
			buf.WriteString(": heartbeat\n\n")
		case errors.Is(err, subscribe.ErrEncode), eventstore.ErrorCode(err) == eventstore.CodeInvalidRequest,
			eventstore.ErrorCode(err) == eventstore.CodeStreamDeleted: // hard-deleted: nothing will come
			endWith(&buf, err)
			write()
			return "error"
		default: // the store is out of reach: keep the client, try again
			if failures++; failures == 1 {
				s.opts.Logger.Warn("a subscription cannot read; retrying", "err", err)
			}
			buf.WriteString(": waiting for the database\n\n")
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		if !write() {
			return "write_timeout"
		}
	}
}

// writeItems writes one message per item.
func writeItems(buf *bytes.Buffer, items []subscribe.Item) {
	for _, it := range items {
		buf.WriteString("id: ")
		buf.WriteString(it.ID)
		buf.WriteString("\ndata: ")
		buf.Write(it.Data)
		buf.WriteString("\n\n")
	}
}

// encodeEvents is the subscriptions' encoder: each event's JSON as reads
// return it.
func (s *Server) encodeEvents(ctx context.Context, events []eventstore.RecordedEvent) ([][]byte, error) {
	rendered, err := s.render(ctx, events)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(rendered))
	for i, e := range rendered {
		if out[i], err = json.Marshal(e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// endWith writes the final message, of type error, in the contract's error
// form.
func endWith(buf *bytes.Buffer, err error) {
	code, msg := eventstore.ErrorCode(err), err.Error()
	if code == "" {
		code = eventstore.CodeInternal
	}
	data, _ := json.Marshal(map[string]errorBody{"error": {Code: code, Message: msg}})
	fmt.Fprintf(buf, "event: error\ndata: %s\n\n", data)
}
