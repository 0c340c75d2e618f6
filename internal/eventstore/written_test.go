package eventstore

import "testing"

func TestWrittenTokenRoundTrip(t *testing.T) {
	w := Written{Stream: MustParseStreamID("Order-a1b2"), Version: 7, Position: 123456}
	got, err := ParseWrittenToken(w.Token())
	if err != nil || got != w {
		t.Fatalf("ParseWrittenToken(Token()) = %+v, %v; want %+v", got, err, w)
	}
}

func TestMalformedWrittenTokensAreRefused(t *testing.T) {
	good := Written{Stream: MustParseStreamID("Order-1"), Version: 1, Position: 1}.Token()
	for _, token := range []string{"", "!!", "AQ", good + "A", good[:len(good)-2], "AgEBT3JkZXItMQ",
		Written{Stream: MustParseStreamID("Order-1"), Version: 0, Position: 1}.Token()} {
		if _, err := ParseWrittenToken(token); ErrorCode(err) != CodeInvalidRequest {
			t.Errorf("ParseWrittenToken(%q) = %v, want invalid_request", token, err)
		}
	}
}
