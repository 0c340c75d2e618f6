// Package readapi is the projector's HTTP read API (contract §5): the
// order_summary and shipped_items read models, the queries declarative
// projections declare, the projections' progress, and /healthz, /readyz
// and /metrics. It listens on 127.0.0.1:8081 by default (the caller's
// choice).
//
// Routes, all GET, JSON in camelCase:
//
//	/v1/orders/{orderId}                          an Order; 404 not_found if unknown
//	/v1/orders?status=&customerId=&limit=&after=  OrderPage, in orderId order
//	/v1/shipped-items?q=&limit=                   ShippedItemPage
//	/v1/projections                               ProjectionsPage
//	/v1/projections/{projection}/queries/{name}   QueryAnswer of a declared query
//	/v1/projections/{projection}[/...]            a projection and its admin routes (admin.go)
//	/healthz, /readyz, /metrics                   as the writer's
//
// Decimals (an item's price, an order's total) are JSON strings holding
// the exact value, such as "59.98", never JSON numbers, which many clients
// read as floats. Times are RFC 3339.
//
// Errors have the writer's format, {"error": {"code", "message",
// "requestId"}}: invalid_request (400, naming the parameter),
// unauthenticated (401), not_found (404), method_not_allowed (405),
// unavailable (503: the read-model database cannot be reached, does not
// answer within Options.Timeout, or has no read-model tables yet) and
// internal (500, with a generic message; the cause is logged); the admin
// routes add forbidden (403), conflict (409) and apply_failed (422). With
// tokens configured, every /v1 read needs a valid token of any role, and
// an admin action one of role admin; health, readiness and metrics never
// need one.
//
// The middleware (request ids, tokens, the error table, request metrics
// and logs) is httpapi.Router, shared with the writer.
package readapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/httpapi"
	"github.com/strata-events/strata/internal/orders"
	"github.com/strata-events/strata/internal/runner"
	"github.com/strata-events/strata/projection"
)

// Projections reports the progress of the projections; the runner's
// Monitor implements it. Statuses must be safe for concurrent use.
type Projections interface {
	// Statuses returns every projection's status. An error whose
	// ErrorCode is set (an *eventstore.Error) is answered with its code;
	// any other as unavailable.
	Statuses(ctx context.Context) ([]runner.Status, error)
}

// Defaults and limits.
const (
	// DefaultTimeout bounds each request's work against the read-model
	// database and Projections.
	DefaultTimeout = 5 * time.Second
	// DefaultLimit is the page size when a request gives no limit.
	DefaultLimit = 50
	// MaxLimit is the largest limit a request may give.
	MaxLimit = 1000
	// MaxTextLength bounds q and customerId, in characters.
	MaxTextLength = 200
)

// Options configures an API; the zero value gives the defaults.
type Options struct {
	// Tokens are the accepted bearer tokens (any role may read); none
	// turns authentication off.
	Tokens []httpapi.Token
	// Timeout bounds each request's work; default DefaultTimeout.
	Timeout time.Duration
	// Ready reports whether the projector can serve; /readyz answers 503
	// while it returns an error. Nil means always ready.
	Ready func(ctx context.Context) error
	// Metrics receives the request metrics (strata_http_requests_total
	// and strata_http_request_duration_seconds, by route) and is served
	// at /metrics; nil makes a registry of the API's own.
	Metrics *prometheus.Registry
	// Logger logs refused and failed requests; nil discards.
	Logger *slog.Logger
	// Queries are the declared queries of the projections, served as
	// GET /v1/projections/{projection}/queries/{name}.
	Queries []*projection.Query
	// Operator, when set, serves the projections' admin routes (see
	// admin.go).
	Operator Operator
}

// The projections behind the routes, which their waits wait for.
const (
	summaryProjection      = "order_summary"
	shippedItemsProjection = "shipped_items"
)

// API serves the read API. It is safe for concurrent use.
type API struct {
	db          *pgxpool.Pool
	projections Projections
	waiter      Waiter // projections, if it can wait for writes
	timeout     time.Duration
	router      *httpapi.Router
	// queries by queryKey, and the projections that declare any.
	queries          map[string]*projection.Query
	queryProjections map[string]bool
}

// New returns an API over db, a pool whose search_path is the read-model
// schema (tables are named without one), and projections, which may be
// nil (then /v1/projections lists none).
func New(db *pgxpool.Pool, projections Projections, opts Options) *API {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	a := &API{
		db:               db,
		projections:      projections,
		timeout:          opts.Timeout,
		queries:          map[string]*projection.Query{},
		queryProjections: map[string]bool{},
		router: httpapi.NewRouter(httpapi.RouterOptions{
			Tokens:  opts.Tokens,
			Ready:   opts.Ready,
			Metrics: opts.Metrics,
			Logger:  opts.Logger.With("component", "readapi"),
		}),
	}
	a.waiter, _ = projections.(Waiter)
	for _, q := range opts.Queries {
		a.queries[queryKey(q.Projection, q.Name)] = q
		a.queryProjections[q.Projection] = true
	}
	a.router.Handle("GET /v1/orders/{orderId}", "order", httpapi.RoleReader, a.waiting(a.getOrder, summaryProjection))
	a.router.Handle("GET /v1/orders", "orders", httpapi.RoleReader, a.waiting(a.listOrders, summaryProjection))
	a.router.Handle("GET /v1/shipped-items", "shipped_items", httpapi.RoleReader, a.waiting(a.searchShippedItems, shippedItemsProjection))
	a.router.Handle("GET /v1/projections", "projections", httpapi.RoleReader, a.waiting(a.listProjections))
	a.router.Handle("GET /v1/projections/{projection}/queries/{query}", "query", httpapi.RoleReader, a.runQuery)
	if opts.Operator != nil {
		a.adminRoutes(opts.Operator)
	}
	return a
}

// Handler returns the API's handler.
func (a *API) Handler() http.Handler { return a.router }

// Order is an order as GET /v1/orders/{orderId} and listings show it.
type Order struct {
	OrderID    string `json:"orderId"`
	CustomerID string `json:"customerId,omitempty"` // absent if OrderCreated was never applied
	Status     string `json:"status"`               // "open" or "shipped"
	// Items are summed by item, in itemId order; [] for none.
	Items     []OrderItem `json:"items"`
	ItemCount int64       `json:"itemCount"`
	// Total is Σ quantity × price over the items' additions, exact, as a
	// decimal string ("59.98").
	Total string `json:"total"`
	// ShippingAddress and ShippedAt are absent until the order ships.
	ShippingAddress string    `json:"shippingAddress,omitempty"`
	CreatedAt       time.Time `json:"createdAt,omitzero"`
	ShippedAt       time.Time `json:"shippedAt,omitzero"`
	// Version is the stream version of the last event applied: a client
	// that appended version N reads its own write once Version >= N.
	Version int64 `json:"version"`
}

// OrderItem is one item of an order.
type OrderItem struct {
	ItemID   string `json:"itemId"`
	Quantity int64  `json:"quantity"` // summed over the item's additions
	Price    string `json:"price"`    // the latest unit price, a decimal string
	Currency string `json:"currency"` // the latest addition's currency
}

// OrderPage is a page of GET /v1/orders. Orders hold their items, as
// GET /v1/orders/{orderId} does. Next is present when more orders may
// follow: pass it back as after.
type OrderPage struct {
	Orders []Order `json:"orders"`
	Next   string  `json:"next,omitempty"`
}

// ShippedItem is an item of a shipped order, as the search finds it.
type ShippedItem struct {
	OrderID         string    `json:"orderId"`
	ItemID          string    `json:"itemId"`
	Quantity        int64     `json:"quantity"`
	ShippingAddress string    `json:"shippingAddress"`
	ShippedAt       time.Time `json:"shippedAt"`
}

// ShippedItemPage is the answer of GET /v1/shipped-items: the most
// recently shipped first, then by orderId and itemId.
type ShippedItemPage struct {
	Items []ShippedItem `json:"items"`
}

// ProjectionsPage is the answer of GET /v1/projections.
type ProjectionsPage struct {
	Projections []runner.Status `json:"projections"`
}

// selectOrders reads orders with their items in one statement, so that
// an order and its items come from one snapshot.
const selectOrders = `
SELECT s.order_id, s.customer_id, s.status, s.item_count, s.total::text, s.shipping_address,
       s.created_at, s.shipped_at, s.version,
       i.item_ids, i.quantities, i.prices, i.currencies
FROM order_summary s
LEFT JOIN LATERAL (
    SELECT array_agg(item_id ORDER BY item_id)            AS item_ids,
           array_agg(quantity ORDER BY item_id)           AS quantities,
           array_agg(price::text ORDER BY item_id)        AS prices,
           array_agg(currency ORDER BY item_id)           AS currencies
    FROM order_summary_items WHERE order_id = s.order_id
) i ON true`

func (a *API) getOrder(w http.ResponseWriter, r *http.Request, _ httpapi.Token) error {
	id := r.PathValue("orderId")
	if err := checkOrderID("orderId", id); err != nil {
		return err
	}
	found, err := a.queryOrders(r.Context(), selectOrders+" WHERE s.order_id = $1", id)
	if err != nil {
		return err
	}
	if len(found) == 0 {
		return eventstore.Errorf(httpapi.CodeNotFound, "order %s is not in the read model", id)
	}
	httpapi.WriteJSON(w, http.StatusOK, found[0])
	return nil
}

func (a *API) listOrders(w http.ResponseWriter, r *http.Request, _ httpapi.Token) error {
	params := r.URL.Query()
	var where []string
	var args []any
	cond := func(sql string, arg any) {
		args = append(args, arg)
		where = append(where, fmt.Sprintf(sql, len(args)))
	}
	status, err := param(params, "status")
	if err != nil {
		return err
	}
	switch status {
	case "":
	case orders.StatusOpen, orders.StatusShipped:
		cond("s.status = $%d", status)
	default:
		return eventstore.Errorf(eventstore.CodeInvalidRequest, "status must be %s or %s, not %.40q", orders.StatusOpen, orders.StatusShipped, status)
	}
	customer, err := textParam(params, "customerId", false)
	if err != nil {
		return err
	}
	if customer != "" {
		cond("s.customer_id = $%d", customer)
	}
	after, err := param(params, "after")
	if err != nil {
		return err
	}
	if after != "" {
		if err := checkOrderID("after", after); err != nil {
			return err
		}
		cond("s.order_id > $%d", after)
	}
	limit, err := limitParam(params)
	if err != nil {
		return err
	}
	sql := selectOrders
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	// One more than the page tells whether a next page exists.
	sql += fmt.Sprintf(" ORDER BY s.order_id LIMIT %d", limit+1)
	found, err := a.queryOrders(r.Context(), sql, args...)
	if err != nil {
		return err
	}
	page := OrderPage{Orders: found}
	if len(found) > limit {
		page.Orders = found[:limit]
		page.Next = found[limit-1].OrderID
	}
	httpapi.WriteJSON(w, http.StatusOK, page)
	return nil
}

// queryOrders runs a selectOrders query.
func (a *API) queryOrders(ctx context.Context, sql string, args ...any) ([]Order, error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	rows, err := a.db.Query(ctx, sql, args...)
	if err != nil {
		return nil, a.readError(err)
	}
	defer rows.Close()
	found := []Order{}
	for rows.Next() {
		var (
			o                           Order
			customer, address           *string
			createdAt, shippedAt        *time.Time
			itemIDs, prices, currencies []string
			quantities                  []int64
		)
		if err := rows.Scan(&o.OrderID, &customer, &o.Status, &o.ItemCount, &o.Total, &address,
			&createdAt, &shippedAt, &o.Version, &itemIDs, &quantities, &prices, &currencies); err != nil {
			return nil, a.readError(err)
		}
		o.CustomerID, o.ShippingAddress = deref(customer), deref(address)
		o.CreatedAt, o.ShippedAt = utc(createdAt), utc(shippedAt)
		o.Items = make([]OrderItem, len(itemIDs))
		for i := range itemIDs {
			o.Items[i] = OrderItem{ItemID: itemIDs[i], Quantity: quantities[i], Price: prices[i], Currency: currencies[i]}
		}
		found = append(found, o)
	}
	if err := rows.Err(); err != nil {
		return nil, a.readError(err)
	}
	return found, nil
}

// searchShippedItems finds shipped items by exact item id or by the words
// of the shipping address, through shipped_items.search.
func (a *API) searchShippedItems(w http.ResponseWriter, r *http.Request, _ httpapi.Token) error {
	params := r.URL.Query()
	q, err := textParam(params, "q", true)
	if err != nil {
		return err
	}
	limit, err := limitParam(params)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.timeout)
	defer cancel()
	rows, err := a.db.Query(ctx, `
		SELECT order_id, item_id, quantity, shipping_address, shipped_at
		FROM shipped_items
		WHERE item_id = $1 OR search @@ plainto_tsquery('simple', $1)
		ORDER BY shipped_at DESC, order_id, item_id
		LIMIT $2`, q, limit)
	if err != nil {
		return a.readError(err)
	}
	defer rows.Close()
	page := ShippedItemPage{Items: []ShippedItem{}}
	for rows.Next() {
		var it ShippedItem
		if err := rows.Scan(&it.OrderID, &it.ItemID, &it.Quantity, &it.ShippingAddress, &it.ShippedAt); err != nil {
			return a.readError(err)
		}
		it.ShippedAt = it.ShippedAt.UTC()
		page.Items = append(page.Items, it)
	}
	if err := rows.Err(); err != nil {
		return a.readError(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, page)
	return nil
}

func (a *API) listProjections(w http.ResponseWriter, r *http.Request, _ httpapi.Token) error {
	statuses, err := a.statuses(r.Context())
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, ProjectionsPage{Projections: statuses})
	return nil
}

// statuses returns the projections' statuses, [] for none.
func (a *API) statuses(ctx context.Context) ([]runner.Status, error) {
	if a.projections == nil {
		return []runner.Status{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	statuses, err := a.projections.Statuses(ctx)
	if err != nil {
		var coded interface{ ErrorCode() string }
		if errors.As(err, &coded) {
			return nil, err
		}
		return nil, eventstore.Errorf(eventstore.CodeUnavailable, "the projections' status cannot be read: %v", err)
	}
	if statuses == nil {
		statuses = []runner.Status{}
	}
	return statuses, nil
}

// readError turns an error of the read-model database into the API's: a
// database that cannot be reached, fails to answer in time or has no
// read-model tables yet is unavailable; a refused statement or a value
// that does not scan is internal (a bug), answered with a generic message.
func (a *API) readError(err error) error {
	var pgErr *pgconn.PgError
	var scanErr pgx.ScanArgError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return eventstore.Errorf(eventstore.CodeUnavailable, "the read-model database did not answer within %s", a.timeout)
	case errors.As(err, &scanErr):
		return fmt.Errorf("read model: %w", err)
	case errors.As(err, &pgErr):
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "57P"), // shutting down, crashed, starting
			pgErr.Code == "53300":                // too many connections
			return eventstore.Errorf(eventstore.CodeUnavailable, "the read-model database is unavailable: %s", pgErr.Message)
		case pgErr.Code == "42P01": // undefined_table
			return eventstore.Errorf(eventstore.CodeUnavailable, "the read model is not set up yet: %s", pgErr.Message)
		}
		return fmt.Errorf("read model: %w", err)
	default:
		// pgx reports a server it cannot reach, or lost, with errors of
		// its own rather than *PgError.
		return eventstore.Errorf(eventstore.CodeUnavailable, "the read-model database cannot be reached: %v", err)
	}
}

// param returns a query parameter, "" when absent; a parameter given twice
// is refused (which one was meant?).
func param(params url.Values, name string) (string, error) {
	if vs := params[name]; len(vs) > 1 {
		return "", eventstore.Errorf(eventstore.CodeInvalidRequest, "%s is given %d times", name, len(vs))
	}
	return params.Get(name), nil
}

// textParam returns a free-text parameter: at most MaxTextLength
// characters of UTF-8, without NUL; required refuses an absent or blank
// one.
func textParam(params url.Values, name string, required bool) (string, error) {
	v, err := param(params, name)
	switch {
	case err != nil:
		return "", err
	case required && strings.TrimSpace(v) == "":
		return "", eventstore.Errorf(eventstore.CodeInvalidRequest, "%s is required: 1 to %d characters, not all spaces", name, MaxTextLength)
	case !utf8.ValidString(v) || strings.ContainsRune(v, 0):
		return "", eventstore.Errorf(eventstore.CodeInvalidRequest, "%s must be UTF-8 text without NUL characters", name)
	case utf8.RuneCountInString(v) > MaxTextLength:
		return "", eventstore.Errorf(eventstore.CodeInvalidRequest, "%s is longer than %d characters", name, MaxTextLength)
	}
	return v, nil
}

// limitParam reads limit: 1 to MaxLimit, DefaultLimit when absent.
func limitParam(params url.Values) (int, error) {
	v, err := param(params, "limit")
	if err != nil || v == "" {
		return DefaultLimit, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		return 0, eventstore.Errorf(eventstore.CodeInvalidRequest, "limit must be a whole number from 1 to %d, not %.40q", MaxLimit, v)
	}
	return n, nil
}

// checkOrderID checks an order id by the contract's rule for the id part of
// a stream id (Order-{orderId}).
func checkOrderID(name, id string) error {
	if _, err := eventstore.NewStreamID("Order", id); err != nil {
		return eventstore.Errorf(eventstore.CodeInvalidRequest,
			"%s %.40q is not an order id: 1 to %d characters of A-Z, a-z, 0-9 and _ . : @ -", name, id, eventstore.MaxIDLength)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
