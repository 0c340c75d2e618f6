package personal

import (
	"container/list"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/strata-events/strata/internal/avro"
)

// Envelope is how an encrypted personal field begins. The field keeps its
// Avro type: a string (or bytes) of the form
//
//	strata:personal:v1:<base64url of key id (8 bytes, big-endian) | nonce (12) | ciphertext and tag>
//
// so a consumer without the key decodes the record and sees opaque text.
const Envelope = "strata:personal:v1:"

// Erased is what a personal field of an erased data subject reads as, in
// every read: the string "[erased]" (a bytes field: its UTF-8 bytes).
const Erased = "[erased]"

// Defaults for Options.
const (
	DefaultCacheSize = 10_000
	// DefaultCacheTTL bounds how long a process that did not erase a
	// subject can still decrypt with the subject's cached key.
	DefaultCacheTTL = 30 * time.Second
	// SealTTL bounds how long a cached key encrypts: an event of a
	// subject appended through another process just after the subject's
	// erasure is encrypted with the destroyed key (and reads as erased)
	// only within this time.
	SealTTL = time.Second
)

// Options configures a Cipher; the zero value gives the defaults.
type Options struct {
	CacheSize int           // keys cached, at most
	CacheTTL  time.Duration // how long a key is cached
}

// Cipher encrypts and decrypts the personal fields of events with their
// data subjects' keys, which it caches.
type Cipher struct {
	keys  KeyStore
	ttl   time.Duration
	now   func() time.Time
	mu    sync.Mutex
	cache *lru
}

// NewCipher returns a Cipher over keys.
func NewCipher(keys KeyStore, opts Options) *Cipher {
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.CacheTTL <= 0 {
		opts.CacheTTL = DefaultCacheTTL
	}
	return &Cipher{keys: keys, ttl: opts.CacheTTL, now: time.Now, cache: newLRU(opts.CacheSize)}
}

// Seal encrypts the personal fields of data (written with s) with the
// key of subject, made on first use. Data without personal fields is
// returned as it is.
func (c *Cipher) Seal(ctx context.Context, s *avro.Schema, subject string, data []byte) ([]byte, error) {
	if !s.HasPersonal() {
		return data, nil
	}
	e, err := c.subjectKey(ctx, subject)
	if err != nil {
		return nil, err
	}
	return s.MapPersonal(data, func(v []byte) ([]byte, error) { return seal(e.aead, e.key.ID, v), nil })
}

// Open decrypts the personal fields of data (written with s). A field of
// an erased subject reads as Erased. Errors: the key store's, and a
// field that holds no envelope of a key it can open.
func (c *Cipher) Open(ctx context.Context, s *avro.Schema, data []byte) ([]byte, error) {
	if !s.HasPersonal() {
		return data, nil
	}
	return s.MapPersonal(data, func(v []byte) ([]byte, error) { return c.open(ctx, v) })
}

// Destroy destroys subject's key in the key store and forgets it: from
// now on this Cipher opens the subject's fields as Erased, and other
// processes' Ciphers do once their cached copy expires (CacheTTL).
//
// The destroyed key stays known as destroyed here, so that a look-up of
// it that raced the erasure cannot bring it back into the cache.
func (c *Cipher) Destroy(ctx context.Context, subject string) (bool, error) {
	id, err := c.keys.Destroy(ctx, subject)
	c.Forget(subject)
	if id != 0 {
		c.put(&entry{key: Key{ID: id, Subject: subject}, erased: true})
	}
	return id != 0, err
}

// Forget marks subject's cached key destroyed, as an erasure does: the
// subject's next event gets a new key, and its fields sealed with the old
// one open as Erased.
func (c *Cipher) Forget(subject string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.cache.bySubject[subject]; ok {
		c.cache.put(&entry{key: Key{ID: id, Subject: subject}, erased: true})
	}
}

func (c *Cipher) open(ctx context.Context, v []byte) ([]byte, error) {
	raw, ok := unwrapEnvelope(v)
	if !ok || len(raw) < 8+12+16 {
		return nil, errors.New("a personal field holds no encrypted value: it was not written by a Strata writer")
	}
	id := int64(binary.BigEndian.Uint64(raw))
	e, err := c.keyByID(ctx, id)
	if errors.Is(err, ErrErased) {
		return []byte(Erased), nil
	}
	if err != nil {
		return nil, err
	}
	plain, err := e.aead.Open(nil, raw[8:20], raw[20:], aad(raw[:8]))
	if err != nil {
		return nil, fmt.Errorf("a personal field of data subject %q does not decrypt with its key: it is damaged", e.key.Subject)
	}
	return plain, nil
}

func unwrapEnvelope(v []byte) ([]byte, bool) {
	s, ok := strings.CutPrefix(string(v), Envelope)
	if !ok {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	return raw, err == nil
}

func seal(aead cipher.AEAD, id int64, plain []byte) []byte {
	raw := make([]byte, 8+12, 8+12+len(plain)+aead.Overhead())
	binary.BigEndian.PutUint64(raw, uint64(id))
	if _, err := rand.Read(raw[8:20]); err != nil {
		panic(err)
	}
	raw = aead.Seal(raw, raw[8:20], plain, aad(raw[:8]))
	out := make([]byte, len(Envelope)+base64.RawURLEncoding.EncodedLen(len(raw)))
	copy(out, Envelope)
	base64.RawURLEncoding.Encode(out[len(Envelope):], raw)
	return out
}

// aad binds a field's ciphertext to the envelope's version and key id.
func aad(id []byte) []byte { return append([]byte(Envelope), id...) }

func gcm(secret []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(secret)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func (c *Cipher) subjectKey(ctx context.Context, subject string) (*entry, error) {
	c.mu.Lock()
	now := c.now()
	if id, ok := c.cache.bySubject[subject]; ok {
		if e := c.cache.get(id, now); e != nil && !e.erased && now.Sub(e.fetched) < SealTTL {
			c.mu.Unlock()
			return e, nil
		}
	}
	c.mu.Unlock()
	k, err := c.keys.SubjectKey(ctx, subject)
	if err != nil {
		return nil, err
	}
	return c.cached(k, now)
}

func (c *Cipher) keyByID(ctx context.Context, id int64) (*entry, error) {
	c.mu.Lock()
	if e := c.cache.get(id, c.now()); e != nil {
		c.mu.Unlock()
		if e.erased {
			return nil, ErrErased
		}
		return e, nil
	}
	c.mu.Unlock()
	k, err := c.keys.KeyByID(ctx, id)
	switch {
	case errors.Is(err, ErrErased):
		// A destroyed key never comes back: remember it for good.
		c.put(&entry{key: Key{ID: id}, erased: true})
		return nil, err
	case err != nil:
		return nil, err
	}
	return c.cached(k, c.now())
}

// cached caches k, fetched at now, with its cipher.
func (c *Cipher) cached(k Key, now time.Time) (*entry, error) {
	aead, err := gcm(k.Secret)
	if err != nil {
		return nil, err
	}
	e := &entry{key: k, aead: aead, fetched: now, expires: now.Add(c.ttl)}
	c.put(e)
	return e, nil
}

func (c *Cipher) put(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cache.put(e)
}

// entry is a cached key; erased entries never expire.
type entry struct {
	key     Key
	aead    cipher.AEAD // of key.Secret; nil when erased
	erased  bool
	fetched time.Time // from the key store
	expires time.Time
}

// lru is a bounded cache of keys by id, least recently used out first.
type lru struct {
	max       int
	order     *list.List // of *entry, most recent first
	byID      map[int64]*list.Element
	bySubject map[string]int64
}

func newLRU(max int) *lru {
	return &lru{max: max, order: list.New(), byID: make(map[int64]*list.Element), bySubject: make(map[string]int64)}
}

func (l *lru) get(id int64, now time.Time) *entry {
	el, ok := l.byID[id]
	if !ok {
		return nil
	}
	e := el.Value.(*entry)
	if !e.erased && now.After(e.expires) {
		l.remove(id)
		return nil
	}
	l.order.MoveToFront(el)
	return e
}

// put caches e, unless its key is known to be destroyed: destroyed keys
// never come back.
func (l *lru) put(e *entry) {
	if el, ok := l.byID[e.key.ID]; ok && el.Value.(*entry).erased {
		l.order.MoveToFront(el)
		return
	}
	l.remove(e.key.ID)
	l.byID[e.key.ID] = l.order.PushFront(e)
	if !e.erased {
		l.bySubject[e.key.Subject] = e.key.ID
	}
	for l.order.Len() > l.max {
		l.remove(l.order.Back().Value.(*entry).key.ID)
	}
}

func (l *lru) remove(id int64) {
	el, ok := l.byID[id]
	if !ok {
		return
	}
	e := el.Value.(*entry)
	l.order.Remove(el)
	delete(l.byID, id)
	if l.bySubject[e.key.Subject] == id {
		delete(l.bySubject, e.key.Subject)
	}
}
