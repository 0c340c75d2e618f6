package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/strata-events/strata/client"
	"github.com/strata-events/strata/internal/httpapi"
)

func TestAppendMulti(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, httpapi.Options{}, "")
	mustAppend(t, c, "Order-m1", client.NoStream, created("m1"))
	appends := []client.StreamAppend{
		{StreamID: "Order-m1", ExpectedVersion: 1, Events: []client.Event{withID(itemAdded("m1"), "0190f2a4-8d3c-7b1e-9f00-0000000000b1")}},
		{StreamID: "Order-m2", ExpectedVersion: client.NoStream, Events: []client.Event{withID(created("m2"), "0190f2a4-8d3c-7b1e-9f00-0000000000b2")}},
	}
	res, err := c.AppendMulti(ctx, appends, []client.Guard{{StreamID: "Order-none", ExpectedVersion: client.NoStream}})
	if err != nil || len(res) != 2 || res[0].StreamID != "Order-m1" || res[0].LastVersion != 2 || res[1].LastVersion != 1 || res[1].Replayed || res[1].Position == "" {
		t.Fatalf("AppendMulti = %+v, %v", res, err)
	}
	if again, err := c.AppendMulti(ctx, appends, nil); err != nil || !again[0].Replayed || again[1].LastVersion != 1 {
		t.Errorf("the retry = %+v, %v; want a replay", again, err)
	}
	_, err = c.AppendMulti(ctx, []client.StreamAppend{{StreamID: "Order-m1", ExpectedVersion: 2, Events: []client.Event{itemAdded("m1")}}},
		[]client.Guard{{StreamID: "Order-m2", ExpectedVersion: client.NoStream}})
	var e *client.Error
	if !client.IsWrongExpectedVersion(err) || !errors.As(err, &e) || e.StreamID != "Order-m2" || e.Actual != 1 {
		t.Errorf("a failed guard = %v, want wrong_expected_version of Order-m2 at 1", err)
	}
	if _, err := c.AppendMulti(ctx, nil, nil); err == nil {
		t.Error("an empty multi-stream append succeeded")
	}
}

func withID(e client.Event, id string) client.Event {
	e.ID = id
	return e
}
