package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/strata-events/strata/internal/config"
	"github.com/strata-events/strata/internal/eventstore"
)

// Role is what a token may do; each role may do what the ones before it
// may.
type Role int

const (
	// RoleNone needs no token: health, readiness and metrics.
	RoleNone Role = iota
	// RoleReader reads events and schemas.
	RoleReader
	// RoleWriter appends events, and reads.
	RoleWriter
	// RoleAdmin registers schemas and changes registry settings, and
	// writes and reads.
	RoleAdmin
)

// TokensOf returns the tokens of the settings (STRATA_API_TOKENS), whose
// roles config has checked.
func TokensOf(ts []config.Token) []Token {
	out := make([]Token, len(ts))
	for i, t := range ts {
		role, _ := ParseRole(t.Role)
		out[i] = Token{Secret: t.Secret, Role: role, Principal: t.Principal}
	}
	return out
}

// ParseRole reads "reader", "writer" or "admin".
func ParseRole(s string) (Role, bool) {
	switch s {
	case "reader":
		return RoleReader, true
	case "writer":
		return RoleWriter, true
	case "admin":
		return RoleAdmin, true
	}
	return RoleNone, false
}

func (r Role) String() string {
	return [...]string{"none", "reader", "writer", "admin"}[r]
}

// Token is a bearer token that the API accepts. When Principal is set,
// events appended with the token carry it as their metadata's userId,
// whatever the client sends.
type Token struct {
	Secret    string
	Role      Role
	Principal string
}

// tokens checks bearer tokens in constant time: every configured token is
// compared, by its SHA-256 hash, whatever matches, so the time taken says
// nothing about how close a guess was.
type tokens struct {
	hashes [][32]byte
	tokens []Token
}

func newTokens(ts []Token) *tokens {
	t := &tokens{tokens: ts}
	for _, tok := range ts {
		t.hashes = append(t.hashes, sha256.Sum256([]byte(tok.Secret)))
	}
	return t
}

func (t *tokens) enabled() bool { return len(t.tokens) > 0 }

// authenticate returns the request's token, or an unauthenticated error.
func (t *tokens) authenticate(r *http.Request) (Token, error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if h == "" {
		return Token{}, eventstore.Errorf(eventstore.CodeUnauthenticated, "this API needs a bearer token: send Authorization: Bearer <token>")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return Token{}, eventstore.Errorf(eventstore.CodeUnauthenticated, "the Authorization header must be Bearer <token>")
	}
	given := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	found := -1
	for i, want := range t.hashes {
		if subtle.ConstantTimeCompare(given[:], want[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Token{}, eventstore.Errorf(eventstore.CodeUnauthenticated, "the bearer token is not valid")
	}
	return t.tokens[found], nil
}

// authorize checks that the request may use a route that needs role, and
// returns its token (the zero Token when authentication is off).
func (t *tokens) authorize(r *http.Request, need Role) (Token, error) {
	if need == RoleNone || !t.enabled() {
		return Token{}, nil
	}
	tok, err := t.authenticate(r)
	if err != nil {
		return Token{}, err
	}
	if tok.Role < need {
		return Token{}, eventstore.Errorf(eventstore.CodeForbidden, "this token's role, %s, may not do this; it needs %s", tok.Role, need)
	}
	return tok, nil
}
