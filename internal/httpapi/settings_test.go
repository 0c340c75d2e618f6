package httpapi

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Retention settings hide from a stream's reads what they exclude, a
// stream's own over its category's, field by field; bad settings are
// refused and change nothing.
func TestRetentionSettingsShapeStreamReads(t *testing.T) {
	tokens := []Token{{Secret: readerToken, Role: RoleReader}, {Secret: adminToken, Role: RoleAdmin}}
	a := newAPI(t, Options{Tokens: tokens})
	admin, reader := []string{"Authorization", "Bearer " + adminToken}, []string{"Authorization", "Bearer " + readerToken}
	for _, id := range []string{"Order-r1", "Order-r2"} {
		if r := a.do("POST", "/v1/streams/"+id+"/events", appendBody(0, orderCreated, itemAdded, itemAdded, itemAdded, shipped), admin...); r.status != 201 {
			t.Fatalf("append = %d %s", r.status, r.body)
		}
	}
	versions := func(stream, query string) string {
		t.Helper()
		var page struct {
			Version int64
			Events  []struct{ Version int64 }
		}
		r := a.do("GET", "/v1/streams/"+stream+"/events"+query, "", reader...)
		if r.status != 200 {
			t.Fatalf("read %s = %d %s", stream, r.status, r.body)
		}
		r.decode(t, &page)
		var out []string
		for _, e := range page.Events {
			out = append(out, strconv.FormatInt(e.Version, 10))
		}
		return strings.Join(out, " ") + " of " + strconv.FormatInt(page.Version, 10)
	}
	put := func(path, body string, status int) response {
		t.Helper()
		r := a.do("PUT", path, body, admin...)
		if r.status != status {
			t.Fatalf("PUT %s %s = %d %s, want %d", path, body, r.status, r.body, status)
		}
		return r
	}

	put("/v1/categories/Order/settings", `{"maxCount": 3}`, 200)
	if got := versions("Order-r1", ""); got != "3 4 5 of 5" {
		t.Errorf("with the category's maxCount 3 Order-r1 reads %q", got)
	}
	r := put("/v1/streams/Order-r1/settings", `{"truncateBefore": 2, "maxCount": 4}`, 200)
	var s streamSettingsJSON
	r.decode(t, &s)
	if *s.Effective.TruncateBefore != 2 || *s.Effective.MaxCount != 4 || *s.Category.MaxCount != 3 {
		t.Errorf("the stream's settings answer %+v", s)
	}
	if got := versions("Order-r1", ""); got != "2 3 4 5 of 5" {
		t.Errorf("with its own truncateBefore 2 and maxCount 4 Order-r1 reads %q", got)
	}
	if got := versions("Order-r1", "?direction=backward"); got != "5 4 3 2 of 5" {
		t.Errorf("read backward Order-r1 reads %q", got)
	}
	if got := versions("Order-r2", ""); got != "3 4 5 of 5" {
		t.Errorf("Order-r2, with the category's settings only, reads %q", got)
	}
	put("/v1/streams/Order-r1/settings", `{"truncateBefore": 9}`, 200)
	if got := versions("Order-r1", ""); got != " of 5" {
		t.Errorf("truncated before version 9 Order-r1 reads %q, want nothing, at version 5", got)
	}
	if r := a.do("POST", "/v1/streams/Order-r1/events", appendBody(5, itemAdded), admin...); r.status != 201 {
		t.Errorf("appending to a truncated stream = %d %s", r.status, r.body)
	}
	put("/v1/streams/Order-r1/settings", `{}`, 200)
	put("/v1/categories/Order/settings", `{"maxAge": "1h"}`, 200)
	if got := versions("Order-r1", ""); got != "1 2 3 4 5 6 of 6" {
		t.Errorf("with the settings removed and a maxAge of an hour Order-r1 reads %q", got)
	}
	if _, err := a.store.Pool().Exec(context.Background(), "UPDATE events SET recorded_at = now() - interval '2 hours' WHERE stream_id = 'Order-r1' AND version <= 4"); err != nil {
		t.Fatal(err)
	}
	if got := versions("Order-r1", ""); got != "5 6 of 6" {
		t.Errorf("with events 1 to 4 two hours old and a maxAge of an hour Order-r1 reads %q", got)
	}
	var cat categorySettingsJSON
	a.do("GET", "/v1/categories/Order/settings", "", reader...).decode(t, &cat)
	if cat.Settings.MaxAge == nil || *cat.Settings.MaxAge != (time.Hour).String() || cat.Settings.MaxCount != nil {
		t.Errorf("the category's settings read %+v, want maxAge 1h only", cat)
	}

	for _, tt := range []struct{ path, body, code, want string }{
		{"/v1/streams/Order-r1/settings", `{"maxCount": 0}`, "invalid_request", "maxCount must be at least 1"},
		{"/v1/streams/Order-r1/settings", `{"truncateBefore": -1}`, "invalid_request", "truncateBefore must be a version"},
		{"/v1/streams/Order-r1/settings", `{"maxAge": "soon"}`, "invalid_request", "maxAge must be a duration"},
		{"/v1/streams/Order-r1/settings", `{"maxAge": "10ms"}`, "invalid_request", "maxAge must be at least 1s"},
		{"/v1/streams/Order-r1/settings", `{"maxEvents": 3}`, "invalid_request", "unknown field"},
		{"/v1/streams/Order-r1/settings", `{"maxCount": "3"}`, "invalid_request", "maxCount"},
		{"/v1/streams/nodash/settings", `{}`, "invalid_stream_id", ""},
		{"/v1/categories/9bad/settings", `{}`, "invalid_stream_id", ""},
	} {
		r := a.do("PUT", tt.path, tt.body, admin...)
		if e := r.errorOf(); r.status != 400 || e.Code != tt.code || !strings.Contains(e.Message, tt.want) {
			t.Errorf("PUT %s %s = %d %s, want 400 %s %q", tt.path, tt.body, r.status, r.body, tt.code, tt.want)
		}
	}
	if r := a.do("PUT", "/v1/categories/Order/settings", `{}`, reader...); r.status != 403 {
		t.Errorf("PUT settings as a reader = %d, want 403", r.status)
	}
	a.do("GET", "/v1/categories/Order/settings", "", reader...).decode(t, &cat)
	if cat.Settings.MaxAge == nil {
		t.Errorf("after refused requests the category's settings are %+v, want them unchanged", cat)
	}
}
