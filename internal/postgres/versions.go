package postgres

import (
	"hash/maphash"
	"sync"
)

// knownVersions remembers, per stream, the highest version this process has
// seen committed: returned by an append or read back. Events are never
// deleted, so such a fact stays true on the server it was learned from
// (another server — a promoted replica, a restored backup — may lack the
// last events, and the store forgets every version when its server
// changes: see recordBackend), and an append at an expected version
// N that is known to exist needs no look-up before its insert: the unique
// index then accepts version N+1 only if the stream is exactly at N.
//
// It is bounded: a full shard forgets an arbitrary entry, which only costs
// the look-up again. It is safe for concurrent use.
type knownVersions struct {
	seed   maphash.Seed
	shards [64]versionShard
	limit  int // entries per shard
}

type versionShard struct {
	mu sync.Mutex
	m  map[string]int64
}

// newKnownVersions returns a cache of about size streams, or nil, which
// remembers nothing, for size < 0.
func newKnownVersions(size int) *knownVersions {
	if size < 0 {
		return nil
	}
	k := &knownVersions{seed: maphash.MakeSeed(), limit: max(1, size/64)}
	for i := range k.shards {
		k.shards[i].m = make(map[string]int64)
	}
	return k
}

func (k *knownVersions) shard(stream string) *versionShard {
	return &k.shards[maphash.String(k.seed, stream)%uint64(len(k.shards))]
}

// get returns the highest version known committed, 0 if none is known.
func (k *knownVersions) get(stream string) int64 {
	if k == nil {
		return 0
	}
	s := k.shard(stream)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[stream]
}

// saw records that version v of stream is committed.
func (k *knownVersions) saw(stream string, v int64) {
	if k == nil || v <= 0 {
		return
	}
	s := k.shard(stream)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.m[stream]; ok {
		s.m[stream] = max(old, v)
		return
	}
	if len(s.m) >= k.limit {
		for victim := range s.m {
			delete(s.m, victim)
			break
		}
	}
	s.m[stream] = v
}

// forget drops every version known.
func (k *knownVersions) forget() {
	if k == nil {
		return
	}
	for i := range k.shards {
		s := &k.shards[i]
		s.mu.Lock()
		clear(s.m)
		s.mu.Unlock()
	}
}
