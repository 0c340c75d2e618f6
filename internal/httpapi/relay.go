package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/strata-events/strata/internal/eventstore"
)

// relayJSON is GET /v1/relay's answer: whether the relay lease is held
// now, and the last report of the relay that holds it (or held it last),
// absent when no relay ever reported.
type relayJSON struct {
	Active bool `json:"active"`
	*relayReportJSON
	Stream *streamTopicJSON `json:"stream,omitempty"`
}

type relayReportJSON struct {
	Instance    string                `json:"instance"`
	ActiveSince time.Time             `json:"activeSince"`
	Checkpoint  relayCheckpointJSON   `json:"checkpoint"`
	LagEvents   int64                 `json:"lagEvents"`
	LagSeconds  float64               `json:"lagSeconds"`
	Halted      *eventstore.RelayHalt `json:"halted,omitempty"`
	UpdatedAt   time.Time             `json:"updatedAt"`
	// Topics is the partition count of each topic published to.
	Topics map[string]int `json:"topics"`
}

type relayCheckpointJSON struct {
	Position  int64 `json:"position"`
	Published int64 `json:"published"`
	// At is absent before the relay ever committed.
	At time.Time `json:"at,omitzero"`
}

// streamTopicJSON is where a stream's events go. Partition is absent
// while the topic's partition count is unknown: before the relay first
// published to it.
type streamTopicJSON struct {
	StreamID  string `json:"streamId"`
	Topic     string `json:"topic"`
	Partition *int32 `json:"partition,omitempty"`
}

// relayStatus answers GET /v1/relay[?stream={streamId}].
func (s *Server) relayStatus(store eventstore.RelayStatusReader) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ Token) error {
		params := r.URL.Query()
		if err := onlyOnce(params, "stream"); err != nil {
			return err
		}
		var stream eventstore.StreamID
		if params.Has("stream") {
			var err error
			if stream, err = eventstore.ParseStreamID(params.Get("stream")); err != nil {
				return eventstore.Errorf(eventstore.CodeInvalidRequest, "stream: %v", err)
			}
			if s.opts.Topic == nil || s.opts.Partition == nil {
				return eventstore.Errorf(eventstore.CodeInvalidRequest, "stream: this writer was not told the relay's topics")
			}
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.Timeout)
		defer cancel()
		st, err := store.RelayStatus(ctx)
		if err != nil {
			return err
		}
		out := relayJSON{Active: st.Active}
		var partitions map[string]int
		if rep := st.Last; rep != nil {
			partitions = rep.Checkpoint.Partitions
			if partitions == nil {
				partitions = map[string]int{}
			}
			out.relayReportJSON = &relayReportJSON{
				Instance: rep.Instance, ActiveSince: rep.ActiveSince,
				Checkpoint: relayCheckpointJSON{Position: rep.Checkpoint.Position, Published: rep.Checkpoint.Published, At: rep.Checkpoint.At},
				LagEvents:  st.LagEvents, LagSeconds: rep.LagSeconds, Halted: rep.Halted, UpdatedAt: st.UpdatedAt, Topics: partitions,
			}
		}
		if !stream.IsZero() {
			topic := s.opts.Topic(stream.Category())
			out.Stream = &streamTopicJSON{StreamID: stream.String(), Topic: topic}
			if n := partitions[topic]; n > 0 {
				p := s.opts.Partition([]byte(stream.String()), n)
				out.Stream.Partition = &p
			}
		}
		WriteJSON(w, http.StatusOK, out)
		return nil
	}
}
