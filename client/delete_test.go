package client_test

import (
	"context"
	"testing"

	"github.com/strata-events/strata/client"
	"github.com/strata-events/strata/internal/httpapi"
)

func TestDeleteStream(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, httpapi.Options{}, "")
	mustAppend(t, c, "Order-del1", client.NoStream, created("del1"), itemAdded("del1"))
	if _, err := c.DeleteStream(ctx, "Order-del1", 1, false); !client.IsWrongExpectedVersion(err) {
		t.Errorf("deleting at a passed version = %v, want wrong_expected_version", err)
	}
	res, err := c.DeleteStream(ctx, "Order-del1", 2, false)
	if err != nil || res.Version != 3 || res.Hard || res.Position == "" {
		t.Fatalf("soft delete = %+v, %v; want version 3 with a position", res, err)
	}
	if _, err := c.ReadStream(ctx, "Order-del1", 1, 10); !client.IsStreamDeleted(err) {
		t.Errorf("reading the deleted stream = %v, want stream_deleted", err)
	}
	mustAppend(t, c, "Order-del1", 3, itemAdded("del1"))
	page, err := c.ReadStream(ctx, "Order-del1", 1, 10)
	if err != nil || page.Version != 4 || len(page.Events) != 1 || page.Events[0].Version != 4 {
		t.Errorf("the stream written again = %+v, %v; want only version 4", page, err)
	}
	if res, err = c.DeleteStream(ctx, "Order-del1", client.Any, true); err != nil || res.Version != 5 || !res.Hard {
		t.Fatalf("hard delete = %+v, %v", res, err)
	}
	if _, err := c.Append(ctx, "Order-del1", client.Any, []client.Event{itemAdded("del1")}); !client.IsStreamDeleted(err) {
		t.Errorf("appending to the hard-deleted stream = %v, want stream_deleted", err)
	}
	if _, err := c.DeleteStream(ctx, "Order-none", client.Any, false); !client.IsStreamNotFound(err) {
		t.Errorf("deleting a stream that does not exist = %v, want stream_not_found", err)
	}
	if _, err := c.DeleteStream(ctx, "", client.Any, false); err == nil {
		t.Error("deleting the empty stream id succeeded")
	}
}
