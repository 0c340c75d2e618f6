package client

import (
	"errors"
	"net/http"
	"testing"
)

func TestAnUnknownOutcomeIsTold(t *testing.T) {
	for _, tc := range []struct {
		body    string
		unknown bool
	}{
		{`{"error": {"code": "unavailable", "message": "whether it committed could not be learned", "outcome": "unknown"}}`, true},
		{`{"error": {"code": "unavailable", "message": "the database did not answer in time; nothing was stored"}}`, false},
	} {
		err := responseError(&http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}}, []byte(tc.body))
		if got := IsOutcomeUnknown(err); got != tc.unknown || !errors.Is(err, ErrUnavailable) {
			t.Errorf("IsOutcomeUnknown(%s) = %v, want %v; and unavailable", tc.body, got, tc.unknown)
		}
	}
}
