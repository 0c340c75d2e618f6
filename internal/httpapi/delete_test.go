package httpapi

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/strata-events/strata/internal/eventstore"
)

// A soft deletion hides the stream until it is written again, which goes
// on from its versions; a hard one refuses it for good. Both leave the
// $StreamDeleted event in $all.
func TestDeletingAStream(t *testing.T) {
	tokens := []Token{{Secret: writerToken, Role: RoleWriter, Principal: "svc"}, {Secret: adminToken, Role: RoleAdmin}}
	a := newAPI(t, Options{Tokens: tokens})
	as := func(token string) []string { return []string{"Authorization", "Bearer " + token} }
	const stream = "/v1/streams/Order-d1"
	for i := range 3 {
		if r := a.do("POST", stream+"/events", appendBody(i, orderCreated), as(writerToken)...); r.status != 201 {
			t.Fatalf("append %d = %d %s", i, r.status, r.body)
		}
	}
	expect := func(what string, r response, status int, code string) {
		t.Helper()
		if e := r.errorOf(); r.status != status || e.Code != code {
			t.Errorf("%s = %d %s, want %d %s", what, r.status, r.body, status, code)
		}
	}
	expect("a deletion at a passed version", a.do("DELETE", stream+"?expectedVersion=2", "", as(writerToken)...), 409, "wrong_expected_version")

	var deleted deleteResponse
	r := a.do("DELETE", stream+"?expectedVersion=3", "", as(writerToken)...)
	if r.status != 200 {
		t.Fatalf("soft delete = %d %s", r.status, r.body)
	}
	r.decode(t, &deleted)
	if deleted.Version != 4 || deleted.Hard || deleted.Position == "" {
		t.Errorf("soft delete answered %+v, want version 4, not hard, with a position", deleted)
	}
	expect("reading the soft-deleted stream", a.do("GET", stream+"/events", "", as(writerToken)...), 404, "stream_deleted")
	expect("deleting it again", a.do("DELETE", stream+"?expectedVersion=-1", "", as(writerToken)...), 409, "stream_deleted")

	var all struct {
		Events []struct {
			StreamID, Type string
			Version        int64
			Data           map[string]any
			Metadata       map[string]any
		}
	}
	a.do("GET", "/v1/events", "", as(writerToken)...).decode(t, &all)
	if n := len(all.Events); n != 4 || all.Events[3].Type != "$StreamDeleted" || all.Events[3].Version != 4 ||
		all.Events[3].Data["streamId"] != "Order-d1" || all.Events[3].Data["hard"] != false || all.Events[3].Metadata["userId"] != "svc" {
		t.Errorf("$all after the deletion = %+v, want the three events and $StreamDeleted at version 4 by svc", all.Events)
	}

	// Written again, it goes on from version 4 and shows only what follows.
	if r := a.do("POST", stream+"/events", appendBody(4, orderCreated), as(writerToken)...); r.status != 201 {
		t.Fatalf("append after the soft delete = %d %s", r.status, r.body)
	}
	var page struct {
		Version int64
		Events  []struct{ Version int64 }
	}
	a.do("GET", stream+"/events", "", as(writerToken)...).decode(t, &page)
	if page.Version != 5 || len(page.Events) != 1 || page.Events[0].Version != 5 {
		t.Errorf("the stream written again reads %+v, want version 5 with only event 5", page)
	}
	a.do("GET", stream+"/events?direction=backward", "", as(writerToken)...).decode(t, &page)
	if len(page.Events) != 1 || page.Events[0].Version != 5 {
		t.Errorf("read backward it shows %+v, want only event 5", page)
	}

	// Hard: admin only, and for good.
	expect("a hard delete by a writer", a.do("DELETE", stream+"?expectedVersion=5&hard=true", "", as(writerToken)...), 403, "forbidden")
	r = a.do("DELETE", stream+"?expectedVersion=5&hard=true", "", as(adminToken)...)
	if r.decode(t, &deleted); r.status != 200 || deleted.Version != 6 || !deleted.Hard {
		t.Fatalf("hard delete = %d %s, want 200 at version 6", r.status, r.body)
	}
	expect("reading the hard-deleted stream", a.do("GET", stream+"/events", "", as(writerToken)...), 404, "stream_deleted")
	for _, expected := range []int{-1, 6, -2} {
		expect(fmt.Sprintf("an append at %d to the hard-deleted stream", expected),
			a.do("POST", stream+"/events", appendBody(expected, orderCreated), as(writerToken)...), 409, "stream_deleted")
	}
	expect("an append of two events to it", a.do("POST", stream+"/events", appendBody(-1, orderCreated, orderCreated), as(writerToken)...), 409, "stream_deleted")
	expect("a second hard delete", a.do("DELETE", stream+"?expectedVersion=-1&hard=true", "", as(adminToken)...), 409, "stream_deleted")
	if n := a.countAll(); n != 6 {
		t.Errorf("$all holds %d events, want 6: the refused writes stored nothing", n)
	}

	// Bad requests change nothing.
	for _, tt := range []struct{ path, code, want string }{
		{"/v1/streams/Order-nope?expectedVersion=-1", "stream_not_found", "not found"},
		{"/v1/streams/Order-d1", "invalid_expected_version", "expectedVersion is required"},
		{"/v1/streams/Order-d1?expectedVersion=0", "invalid_expected_version", "-1 (any), -2"},
		{"/v1/streams/Order-d1?expectedVersion=x", "invalid_expected_version", "whole number"},
		{"/v1/streams/Order-d1?expectedVersion=-1&hard=maybe", "invalid_request", "hard must be true or false"},
		{"/v1/streams/Order-d1?expectedVersion=-1&force=1", "invalid_request", `unknown parameter "force"`},
		{"/v1/streams/Order-d1?expectedVersion=1&expectedVersion=2", "invalid_request", "given 2 times"},
		{"/v1/streams/nodash?expectedVersion=-1", "invalid_stream_id", ""},
	} {
		r := a.do("DELETE", tt.path, "", as(adminToken)...)
		if e := r.errorOf(); r.status >= 500 || e.Code != tt.code || !strings.Contains(e.Message, tt.want) {
			t.Errorf("DELETE %s = %d %s, want %s %q", tt.path, r.status, r.body, tt.code, tt.want)
		}
	}
	expect("appending a system event", a.do("POST", "/v1/streams/Order-d2/events",
		appendBody(-1, `{"type": "$StreamDeleted", "data": {"streamId": "Order-d2", "hard": true}}`), as(writerToken)...), 400, "invalid_request")
	if n := a.countAll(); n != 6 {
		t.Errorf("$all holds %d events after bad requests, want 6", n)
	}
}

// Appends racing a hard deletion either land before it or are refused:
// nothing follows the stream's $StreamDeleted, and no append is lost
// without an answer.
func TestAppendsDuringAHardDeletion(t *testing.T) {
	a := newAPI(t, Options{})
	const stream = "/v1/streams/Order-race"
	if r := a.do("POST", stream+"/events", appendBody(0, orderCreated), ""); r.status != 201 {
		t.Fatal(r.status)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored, refused := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				r := a.do("POST", stream+"/events", appendBody(-1, orderCreated), "")
				mu.Lock()
				switch {
				case r.status == 201:
					stored++
				case r.errorOf().Code == "stream_deleted":
					refused++
				default:
					t.Errorf("an append racing the deletion = %d %s", r.status, r.body)
				}
				mu.Unlock()
			}
		}()
	}
	if del := a.do("DELETE", stream+"?expectedVersion=-1&hard=true", "", ""); del.status != 200 {
		t.Fatalf("hard delete at any version = %d %s", del.status, del.body)
	}
	wg.Wait()
	page, err := a.store.ReadAll(context.Background(), "", eventstore.MaxReadLimit)
	if err != nil {
		t.Fatal(err)
	}
	last := page.Events[len(page.Events)-1]
	if last.Type != eventstore.StreamDeletedType || int(last.Version) != stored+2 || len(page.Events) != stored+2 {
		t.Errorf("after %d appends stored and %d refused the stream ends with %s at version %d of %d events; want $StreamDeleted last, at version %d",
			stored, refused, last.Type, last.Version, len(page.Events), stored+2)
	}
	if refused == 0 {
		t.Logf("every append landed before the deletion (%d)", stored)
	}
}

// withoutSystemSchemas is a registry where schemas apply never ran with
// the system schemas.
type withoutSystemSchemas struct{ Schemas }

func (w withoutSystemSchemas) Encode(ctx context.Context, typ string, data []byte, meta *eventstore.Metadata) (eventstore.Fingerprint, []byte, error) {
	if typ == eventstore.StreamDeletedType {
		return 0, nil, eventstore.Errorf(eventstore.CodeUnknownEventType, "unknown event type %s", typ)
	}
	return w.Schemas.Encode(ctx, typ, data, meta)
}

func TestADeletionWithoutTheSystemSchemaSaysWhatToRun(t *testing.T) {
	store := newPostgresStore(t)
	srv := httptest.NewServer(New(store, withoutSystemSchemas{loadTestSchemas(t)}, Options{}).Handler())
	t.Cleanup(srv.Close)
	a := &api{t: t, url: srv.URL, store: store}
	if r := a.do("POST", "/v1/streams/Order-s1/events", appendBody(0, orderCreated), ""); r.status != 201 {
		t.Fatal(r.status)
	}
	r := a.do("DELETE", "/v1/streams/Order-s1?expectedVersion=1", "")
	if e := r.errorOf(); r.status != 503 || e.Code != "unavailable" || !strings.Contains(e.Message, "writer schemas apply") {
		t.Errorf("a deletion without the system schema = %d %s, want 503 naming writer schemas apply", r.status, r.body)
	}
	if n := a.countAll(); n != 1 {
		t.Errorf("$all holds %d events, want 1: nothing was deleted", n)
	}
}
