package client_test

import (
	"context"
	"strings"
	"testing"

	"github.com/strata-events/strata/client"
	"github.com/strata-events/strata/internal/httpapi"
)

func TestEraseDataSubjectAndItsAccessRequest(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, httpapi.Options{}, "")
	mustAppend(t, c, "Order-p1", client.NoStream, created("p1"), shipped("p1")) // customer user123
	mustAppend(t, c, "Order-p2", client.NoStream, created("p2"))

	page, err := c.DataSubjectEvents(ctx, "user123", 0, 2)
	if err != nil || len(page.Events) != 2 || page.Next == 0 || !strings.Contains(string(page.Events[1].Data), "123 Main St") {
		t.Fatalf("the first page of user123's events = %+v, %v; want 2 events, decrypted, and a next page", page, err)
	}
	if rest, err := c.DataSubjectEvents(ctx, "user123", page.Next, 2); err != nil || len(rest.Events) != 1 || rest.Events[0].StreamID != "Order-p2" {
		t.Errorf("the next page = %+v, %v; want Order-p2's OrderCreated", rest, err)
	}

	res, err := c.EraseDataSubject(ctx, "user123")
	if err != nil || !res.KeyDestroyed || len(res.Streams) != 2 || res.Streams[0].StreamID != "Order-p1" || res.Streams[0].Version != 3 {
		t.Fatalf("EraseDataSubject = %+v, %v; want the key destroyed and both orders told", res, err)
	}
	read, err := c.ReadStream(ctx, "Order-p1", 1, 10)
	if err != nil || !strings.Contains(string(read.Events[1].Data), `"[erased]"`) || read.Events[2].Type != "$DataSubjectErased" {
		t.Errorf("Order-p1 after the erasure = %+v, %v", read, err)
	}
	if _, err := c.EraseDataSubject(ctx, ""); err == nil {
		t.Error("erasing the empty subject id succeeded")
	}
	if _, err := c.EraseDataSubject(ctx, " x"); client.ErrorCode(err) != "invalid_request" {
		t.Errorf("erasing a subject id with a space in front = %v, want invalid_request", err)
	}
}
