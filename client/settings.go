package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// Retention is what a stream's reads keep: versions from TruncateBefore
// on, the last MaxCount versions, the events recorded within MaxAge (a
// duration such as "720h"). Nil fields set no limit. A stream's own
// settings win, field by field, over its category's. The events they
// exclude stay in $all and in their category until they are scavenged.
type Retention struct {
	TruncateBefore *int64  `json:"truncateBefore,omitempty"`
	MaxCount       *int64  `json:"maxCount,omitempty"`
	MaxAge         *string `json:"maxAge,omitempty"`
}

// StreamSettings is a stream's retention: its own, its category's, and
// the one that applies.
type StreamSettings struct {
	StreamID  string    `json:"streamId"`
	Settings  Retention `json:"settings"`
	Category  Retention `json:"categorySettings"`
	Effective Retention `json:"effective"`
}

// StreamSettings returns the retention settings of a stream.
func (c *Client) StreamSettings(ctx context.Context, streamID string) (StreamSettings, error) {
	var out StreamSettings
	if streamID == "" {
		return out, errors.New("stream settings: the stream id is empty")
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/streams/"+url.PathEscape(streamID)+"/settings", nil, nil, &out)
	return out, wrap("stream settings of "+streamID, err)
}

// SetStreamSettings replaces a stream's retention settings (the admin
// role); Retention{} removes them.
func (c *Client) SetStreamSettings(ctx context.Context, streamID string, r Retention) (StreamSettings, error) {
	var out StreamSettings
	if streamID == "" {
		return out, errors.New("set stream settings: the stream id is empty")
	}
	body, _ := json.Marshal(r)
	_, err := c.do(ctx, http.MethodPut, "/v1/streams/"+url.PathEscape(streamID)+"/settings", nil, body, &out)
	return out, wrap("set stream settings of "+streamID, err)
}

// SetCategorySettings replaces a category's retention settings, which
// apply to each of its streams where the stream has none of its own.
func (c *Client) SetCategorySettings(ctx context.Context, category string, r Retention) (Retention, error) {
	var out struct{ Settings Retention }
	if category == "" {
		return Retention{}, errors.New("set category settings: the category is empty")
	}
	body, _ := json.Marshal(r)
	_, err := c.do(ctx, http.MethodPut, "/v1/categories/"+url.PathEscape(category)+"/settings", nil, body, &out)
	return out.Settings, wrap("set category settings of "+category, err)
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
