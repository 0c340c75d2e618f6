package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
)

// Retention settings (eventstore.Retention), read with the reader role and
// set with admin:
//
//	GET|PUT /v1/streams/{streamId}/settings
//	GET|PUT /v1/categories/{category}/settings
//
// A PUT body is {"truncateBefore": N, "maxCount": N, "maxAge": "720h"},
// every field optional; it replaces the settings ({} removes them). Reads of
// a stream then keep only what its settings, or its category's, keep.

// retentionJSON is the settings' JSON form; maxAge is a Go duration.
type retentionJSON struct {
	TruncateBefore *int64  `json:"truncateBefore,omitempty"`
	MaxCount       *int64  `json:"maxCount,omitempty"`
	MaxAge         *string `json:"maxAge,omitempty"`
}

func toJSON(r eventstore.Retention) retentionJSON {
	out := retentionJSON{TruncateBefore: r.TruncateBefore, MaxCount: r.MaxCount}
	if r.MaxAge != nil {
		s := r.MaxAge.String()
		out.MaxAge = &s
	}
	return out
}

func (j retentionJSON) retention() (eventstore.Retention, error) {
	r := eventstore.Retention{TruncateBefore: j.TruncateBefore, MaxCount: j.MaxCount}
	if j.MaxAge != nil {
		d, err := time.ParseDuration(*j.MaxAge)
		if err != nil {
			return r, eventstore.Errorf(eventstore.CodeInvalidRequest, "maxAge must be a duration such as \"720h\" or \"90m\", not %.40q", *j.MaxAge)
		}
		r.MaxAge = &d
	}
	return r, r.Validate()
}

// streamSettingsJSON answers the stream routes: its own settings, its
// category's, and what applies (the first over the second).
type streamSettingsJSON struct {
	StreamID  string        `json:"streamId"`
	Settings  retentionJSON `json:"settings"`
	Category  retentionJSON `json:"categorySettings"`
	Effective retentionJSON `json:"effective"`
}

type categorySettingsJSON struct {
	Category string        `json:"category"`
	Settings retentionJSON `json:"settings"`
}

func (s *Server) settingsRoutes(rs eventstore.RetentionStore) {
	streamSettings := func(ctx context.Context, stream eventstore.StreamID) (streamSettingsJSON, error) {
		own, err := rs.StreamRetention(ctx, stream)
		if err != nil {
			return streamSettingsJSON{}, err
		}
		cat, err := rs.CategoryRetention(ctx, stream.Category())
		return streamSettingsJSON{StreamID: stream.String(), Settings: toJSON(own), Category: toJSON(cat), Effective: toJSON(own.Over(cat))}, err
	}
	// put reads a body's settings and sets them with set, then answers get.
	put := func(r *http.Request, set func(context.Context, eventstore.Retention) error) error {
		body, err := readBody(r, s.router.maxBody)
		if err != nil {
			return err
		}
		var in retentionJSON
		if err := decodeStrict(body, &in); err != nil {
			return eventstore.Errorf(eventstore.CodeInvalidRequest, "the settings are {\"truncateBefore\": N, \"maxCount\": N, \"maxAge\": \"720h\"}, each optional: %v", err)
		}
		ret, err := in.retention()
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.Timeout)
		defer cancel()
		return set(ctx, ret)
	}
	streamOf := func(r *http.Request) (eventstore.StreamID, error) {
		return eventstore.ParseStreamID(r.PathValue("streamId"))
	}
	categoryOf := func(r *http.Request) (string, error) {
		c := r.PathValue("category")
		return c, eventstore.ValidateCategory(c)
	}
	getStream := func(w http.ResponseWriter, r *http.Request, _ Token) error {
		stream, err := streamOf(r)
		if err != nil {
			return err
		}
		out, err := streamSettings(r.Context(), stream)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, out)
		return nil
	}
	getCategory := func(w http.ResponseWriter, r *http.Request, _ Token) error {
		c, err := categoryOf(r)
		if err != nil {
			return err
		}
		ret, err := rs.CategoryRetention(r.Context(), c)
		if err != nil {
			return err
		}
		WriteJSON(w, http.StatusOK, categorySettingsJSON{Category: c, Settings: toJSON(ret)})
		return nil
	}
	s.router.Handle("GET /v1/streams/{streamId}/settings", "stream_settings", RoleReader, getStream)
	s.router.Handle("PUT /v1/streams/{streamId}/settings", "set_stream_settings", RoleAdmin, func(w http.ResponseWriter, r *http.Request, tok Token) error {
		stream, err := streamOf(r)
		if err != nil {
			return err
		}
		if err := put(r, func(ctx context.Context, ret eventstore.Retention) error {
			return rs.SetStreamRetention(ctx, stream, ret)
		}); err != nil {
			return err
		}
		return getStream(w, r, tok)
	})
	s.router.Handle("GET /v1/categories/{category}/settings", "category_settings", RoleReader, getCategory)
	s.router.Handle("PUT /v1/categories/{category}/settings", "set_category_settings", RoleAdmin, func(w http.ResponseWriter, r *http.Request, tok Token) error {
		c, err := categoryOf(r)
		if err != nil {
			return err
		}
		if err := put(r, func(ctx context.Context, ret eventstore.Retention) error { return rs.SetCategoryRetention(ctx, c, ret) }); err != nil {
			return err
		}
		return getCategory(w, r, tok)
	})
}
