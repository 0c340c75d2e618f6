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

func TestRetentionSettings(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, httpapi.Options{}, "")
	mustAppend(t, c, "Order-ret1", client.NoStream, created("ret1"), itemAdded("ret1"), itemAdded("ret1"))
	two, day := int64(2), "24h"
	if _, err := c.SetCategorySettings(ctx, "Order", client.Retention{MaxAge: &day}); err != nil {
		t.Fatal(err)
	}
	s, err := c.SetStreamSettings(ctx, "Order-ret1", client.Retention{MaxCount: &two})
	if err != nil || *s.Effective.MaxCount != 2 || *s.Effective.MaxAge != "24h0m0s" {
		t.Fatalf("set = %+v, %v; want maxCount 2 over the category's maxAge 24h", s, err)
	}
	page, err := c.ReadStream(ctx, "Order-ret1", 1, 10)
	if err != nil || len(page.Events) != 2 || page.Events[0].Version != 2 {
		t.Errorf("read with maxCount 2 = %+v, %v; want versions 2 and 3", page, err)
	}
	zero := int64(0)
	if _, err := c.SetStreamSettings(ctx, "Order-ret1", client.Retention{MaxCount: &zero}); client.ErrorCode(err) != client.CodeInvalidRequest {
		t.Errorf("maxCount 0 = %v, want invalid_request", err)
	}
	if got, err := c.StreamSettings(ctx, "Order-ret1"); err != nil || *got.Settings.MaxCount != 2 {
		t.Errorf("after a refused change the settings are %+v, %v", got, err)
	}
}
