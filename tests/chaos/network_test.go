package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// network is the TCP proxies between the processes and their services,
// toxiproxy embedded as a library: one link per process to PostgreSQL (so
// that a fault can reach one process or all), and one link to the broker,
// which every Kafka client shares (the broker advertises the link's
// address, so the bootstrap and every later connection go through it).
type network struct {
	server *toxiproxy.ApiServer
	mu     sync.Mutex
	links  []*link
}

func newNetwork() *network {
	return &network{server: toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())}
}

// link is one proxy: clients connect to listen, the proxy to upstream.
type link struct {
	name   string
	proxy  *toxiproxy.Proxy
	mu     sync.Mutex
	toxics []string
}

// add starts a proxy from listen to upstream.
func (n *network) add(name, listen, upstream string) (*link, error) {
	p := toxiproxy.NewProxy(n.server, name, listen, upstream)
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("proxy %s: %w", name, err)
	}
	l := &link{name: name, proxy: p}
	n.mu.Lock()
	n.links = append(n.links, l)
	n.mu.Unlock()
	return l, nil
}

// addr is where clients connect.
func (l *link) addr() string { return l.proxy.Listen }

// clear removes every toxic.
func (l *link) clear() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.proxy.Toxics.ResetToxics(context.Background())
	l.toxics = nil
}

// up lets the link take connections again.
func (l *link) up() error {
	if err := l.proxy.Start(); err != nil && !errors.Is(err, toxiproxy.ErrProxyAlreadyStarted) {
		return fmt.Errorf("proxy %s: %w", l.name, err)
	}
	return nil
}

// toxic adds a toxic of kind typ (latency, timeout, reset_peer,
// slow_close) with attrs to both directions of the link; it acts on the
// connections open now and on those made later, until clear.
func (l *link) toxic(typ string, attrs map[string]any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, stream := range []string{"upstream", "downstream"} {
		name := fmt.Sprintf("%s_%s_%d", typ, stream, len(l.toxics))
		b, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "attributes": attrs})
		if err != nil {
			return err
		}
		if _, err := l.proxy.Toxics.AddToxicJson(strings.NewReader(string(b))); err != nil {
			return fmt.Errorf("proxy %s: add %s: %w", l.name, typ, err)
		}
		l.toxics = append(l.toxics, name)
	}
	return nil
}

// cut closes every connection through the link, as a firewall that drops
// its state does, and takes new ones at once.
func (l *link) cut() error {
	l.proxy.Stop()
	return l.up()
}

// close stops every proxy.
func (n *network) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.links {
		l.proxy.Stop()
	}
}
