package tests

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/strata-events/strata/internal/harness"
)

// span is a span as an OTLP collector receives it.
type span struct {
	service, name             string
	traceID, spanID, parentID string
}

// otlpReceiver is an OTLP/HTTP trace collector that keeps what it gets.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []span
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err == nil && r.Header.Get("Content-Encoding") == "gzip" {
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(body)); err == nil {
			body, err = io.ReadAll(zr)
		}
	}
	var req collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &req)
	}
	if r.URL.Path != "/v1/traces" || err != nil {
		http.Error(w, fmt.Sprintf("%s: %v", r.URL.Path, err), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				o.spans = append(o.spans, span{service: service, name: s.Name, traceID: hex.EncodeToString(s.TraceId),
					spanID: hex.EncodeToString(s.SpanId), parentID: hex.EncodeToString(s.ParentSpanId)})
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Write(out)
}

// children returns the spans of trace traceID whose parent is parent, named name.
func (o *otlpReceiver) children(traceID, parent, name string) []span {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []span
	for _, s := range o.spans {
		if s.traceID == traceID && s.parentID == parent && s.name == name {
			out = append(out, s)
		}
	}
	return out
}

// TestOneTraceSpansRequestAppendPublishApply runs the writer, a relay of
// its own and the projector as three processes exporting to one OTLP
// collector. An append that carries a traceparent gives one trace: the
// writer's append span is the caller's child, the relay's publish span the
// append's, and the projector's apply spans the publish's. An append with
// none starts a trace of its own.
func TestOneTraceSpansRequestAppendPublishApply(t *testing.T) {
	receiver := &otlpReceiver{}
	collector := httptest.NewServer(receiver)
	defer collector.Close()
	writerBin, env, _, _ := prepareStore(t, "STRATA_OTEL_EXPORTER_OTLP_ENDPOINT="+collector.URL, "OTEL_BSP_SCHEDULE_DELAY=100")
	w := serveWriter(t, writerBin, env, "--relay=false")
	startLogged(t, writerBin, append(env, "STRATA_HTTP_ADDR=127.0.0.1:0"), "relay", "relay for store", "relay")
	_, readModel := harness.NewSchema(t)
	projectorBin := build(t, "projector")
	startProjector(t, projectorBin, append(env, "STRATA_READMODEL_SCHEMA="+readModel, "STRATA_PROJECTIONS_DIR=../projections",
		"STRATA_GROUP_PREFIX="+harness.UniqueName("trace")+"."))

	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	append := func(stream, traceparent string) {
		t.Helper()
		req, _ := http.NewRequest("POST", w.url+"/v1/streams/"+stream+"/events", strings.NewReader(fmt.Sprintf(`{"expectedVersion": 0, "events": [
			{"type": "OrderCreated", "data": {"orderId": %q, "customerId": "tracy", "timestamp": "2026-03-01T10:00:00Z"}}]}`, strings.TrimPrefix(stream, "Order-"))))
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
			req.Header.Set("tracestate", "strata=test")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("append %s = %v, %v", stream, resp, err)
		}
		resp.Body.Close()
	}
	append("Order-traced", "00-"+traceID+"-"+callerSpan+"-01")
	append("Order-untraced", "")

	// The chain of one trace: caller → append → publish → apply, each
	// span found by its parent.
	find := func(what string, get func() []span) span {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if got := get(); len(got) > 0 {
				return got[0]
			}
			if time.Now().After(deadline) {
				receiver.mu.Lock()
				defer receiver.mu.Unlock()
				t.Fatalf("no %s span within 60 s; the collector has %+v", what, receiver.spans)
			}
		}
	}
	appendSpan := find("append", func() []span { return receiver.children(traceID, callerSpan, "append Order") })
	publish := find("publish", func() []span {
		return receiver.children(traceID, appendSpan.spanID, "publish "+envValue(env, "STRATA_TOPIC_PREFIX")+"Order")
	})
	apply := find("apply", func() []span { return receiver.children(traceID, publish.spanID, "apply order_summary") })
	if appendSpan.service != "strata-writer" || publish.service != "strata-relay" || apply.service != "strata-projector" {
		t.Errorf("the spans come from %s, %s and %s; want strata-writer, strata-relay and strata-projector",
			appendSpan.service, publish.service, apply.service)
	}

	// The append without a traceparent is the root of a trace of its own.
	root := find("root append", func() []span {
		receiver.mu.Lock()
		defer receiver.mu.Unlock()
		for _, s := range receiver.spans {
			if s.name == "append Order" && s.traceID != traceID && s.parentID == "" {
				return []span{s}
			}
		}
		return nil
	})
	rootPublish := find("its publish", func() []span {
		return receiver.children(root.traceID, root.spanID, "publish "+envValue(env, "STRATA_TOPIC_PREFIX")+"Order")
	})
	find("its apply", func() []span { return receiver.children(root.traceID, rootPublish.spanID, "apply order_summary") })
}
