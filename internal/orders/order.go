package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/strata-events/strata/aggregate"
	"github.com/strata-events/strata/client"
)

// Category is the stream category of orders: order o-1's stream is
// "Order-o-1".
const Category = "Order"

// StreamID returns the stream of the order orderID.
func StreamID(orderID string) string { return Category + "-" + orderID }

// The event data of the Order category, in natural JSON (schemas/*.avsc).
// Timestamps are stored to the millisecond; prices are decimal text with at
// most two decimal places, as reads return them ("15.99").
type (
	OrderCreated struct {
		OrderID    string    `json:"orderId"`
		CustomerID string    `json:"customerId"`
		Timestamp  time.Time `json:"timestamp"`
	}
	OrderItemAdded struct {
		OrderID   string    `json:"orderId"`
		ItemID    string    `json:"itemId"`
		Quantity  int       `json:"quantity"`
		Price     string    `json:"price"`
		Timestamp time.Time `json:"timestamp"`
		// Currency is version 2's; empty is left out, so the schema's
		// default (USD) applies and a writer with version 1 only accepts it.
		Currency string `json:"currency,omitempty"`
	}
	OrderShipped struct {
		OrderID         string    `json:"orderId"`
		ShippingAddress string    `json:"shippingAddress"`
		Timestamp       time.Time `json:"timestamp"`
	}
)

// Order is the state of an order, derived from its stream by Evolve. It is
// a value: Evolve returns a changed copy and never modifies the Order it is
// given, nor anything it refers to.
type Order struct {
	// ID is the order's id, the stream id's part after "Order-".
	ID         string
	CustomerID string
	// Created is true once the order's OrderCreated is stored.
	Created bool
	// Shipped is true once its OrderShipped is stored; no items can be
	// added after.
	Shipped         bool
	ShippingAddress string
	// Items are the order's items in the order they were first added.
	Items []Item
	// Version is the stream version of the last event applied.
	Version int64
}

// Item is one item of an order: its quantity summed over its additions,
// and the unit price and currency of the latest.
type Item struct {
	ItemID   string
	Quantity int64
	Price    string
	Currency string
}

// Evolve applies one stored event of an order's stream to its state. It
// takes history as it is: events that break today's rules (a second
// OrderCreated, an item after shipping) are applied, not refused, and
// events of other types only advance Version. It fails only on data that
// does not decode.
func Evolve(o Order, e client.RecordedEvent) (Order, error) {
	switch e.Type {
	case TypeOrderCreated:
		var d OrderCreated
		if err := decodeData(e, &d); err != nil {
			return o, err
		}
		o.Created, o.CustomerID = true, d.CustomerID
		if o.ID == "" {
			o.ID = d.OrderID
		}
	case TypeOrderItemAdded:
		var d OrderItemAdded
		if err := decodeData(e, &d); err != nil {
			return o, err
		}
		if d.Currency == "" {
			d.Currency = DefaultCurrency
		}
		o.Items = slices.Clone(o.Items)
		if i := slices.IndexFunc(o.Items, func(it Item) bool { return it.ItemID == d.ItemID }); i >= 0 {
			o.Items[i].Quantity += int64(d.Quantity)
			o.Items[i].Price, o.Items[i].Currency = d.Price, d.Currency
		} else {
			o.Items = append(o.Items, Item{ItemID: d.ItemID, Quantity: int64(d.Quantity), Price: d.Price, Currency: d.Currency})
		}
	case TypeOrderShipped:
		var d OrderShipped
		if err := decodeData(e, &d); err != nil {
			return o, err
		}
		o.Shipped, o.ShippingAddress = true, d.ShippingAddress
	}
	o.Version = e.Version
	return o, nil
}

func decodeData(e client.RecordedEvent, v any) error {
	if err := json.Unmarshal(e.Data, v); err != nil {
		return fmt.Errorf("decoding the data of %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}

// Kinds of rejection, for errors.Is. Each command's error matches one.
var (
	// ErrInvalid: an argument breaks a rule whatever the order's state (a
	// quantity of 0, a price that is not a decimal, an empty address).
	ErrInvalid = errors.New("invalid order command")
	// ErrAlreadyCreated: the order exists; it is created once.
	ErrAlreadyCreated = errors.New("order already exists")
	// ErrNotCreated: the order does not exist yet.
	ErrNotCreated = errors.New("order does not exist")
	// ErrShipped: the order is shipped; it takes no more items and ships once.
	ErrShipped = errors.New("order is shipped")
	// ErrNoItems: the order has no items to ship.
	ErrNoItems = errors.New("order has no items")
)

// ruleError is a rejection with a message of its own that matches its kind.
type ruleError struct {
	kind error
	msg  string
}

func (e *ruleError) Error() string        { return e.msg }
func (e *ruleError) Is(target error) bool { return target == e.kind }

func reject(kind error, format string, args ...any) error {
	return &ruleError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Create decides the command "create order o.ID for customerID" at time at:
// an OrderCreated, or a rejection if the order already exists or an id is
// invalid.
func (o Order) Create(customerID string, at time.Time) ([]client.Event, error) {
	if err := checkOrderID(o.ID); err != nil {
		return nil, err
	}
	if customerID == "" {
		return nil, reject(ErrInvalid, "the customer id is empty")
	}
	if o.Created {
		return nil, reject(ErrAlreadyCreated, "order %s already exists: an order is created once", o.ID)
	}
	return []client.Event{{Type: TypeOrderCreated, Data: OrderCreated{OrderID: o.ID, CustomerID: customerID, Timestamp: stamp(at)}}}, nil
}

// AddItem decides the command "add quantity units of itemID at unit price
// price" at time at: an OrderItemAdded, or a rejection. The quantity must
// be positive (and fit the schema's int); the price a decimal of at least
// 0 with at most two decimal places, such as "15.99" (it is stored with
// exactly two). The order must exist and not be shipped.
func (o Order) AddItem(itemID string, quantity int, price string, at time.Time) ([]client.Event, error) {
	if itemID == "" {
		return nil, reject(ErrInvalid, "the item id is empty")
	}
	if quantity < 1 {
		return nil, reject(ErrInvalid, "item %s: the quantity must be positive, not %d", itemID, quantity)
	}
	if quantity > math.MaxInt32 {
		return nil, reject(ErrInvalid, "item %s: the quantity %d is too large (at most %d)", itemID, quantity, math.MaxInt32)
	}
	cents, err := parsePrice(price)
	if err != nil {
		return nil, reject(ErrInvalid, "item %s: %v", itemID, err)
	}
	switch {
	case !o.Created:
		return nil, reject(ErrNotCreated, "order %s does not exist: create it before adding items", o.ID)
	case o.Shipped:
		return nil, reject(ErrShipped, "order %s is shipped: no items can be added", o.ID)
	}
	return []client.Event{{Type: TypeOrderItemAdded, Data: OrderItemAdded{
		OrderID: o.ID, ItemID: itemID, Quantity: quantity, Price: cents, Timestamp: stamp(at),
	}}}, nil
}

// Ship decides the command "ship the order to address" at time at: an
// OrderShipped, or a rejection. The address must not be blank; the order
// must exist, have at least one item and not be shipped already.
func (o Order) Ship(address string, at time.Time) ([]client.Event, error) {
	if strings.TrimSpace(address) == "" {
		return nil, reject(ErrInvalid, "the shipping address is empty")
	}
	switch {
	case !o.Created:
		return nil, reject(ErrNotCreated, "order %s does not exist: create it before shipping it", o.ID)
	case o.Shipped:
		return nil, reject(ErrShipped, "order %s is already shipped: an order ships once", o.ID)
	case len(o.Items) == 0:
		return nil, reject(ErrNoItems, "order %s has no items: an order ships with at least one", o.ID)
	}
	// The address is personal data (schemas/OrderShipped.avsc): the
	// customer is its data subject.
	return []client.Event{{Type: TypeOrderShipped, Data: OrderShipped{OrderID: o.ID, ShippingAddress: address, Timestamp: stamp(at)},
		Metadata: client.Metadata{DataSubject: o.CustomerID}}}, nil
}

// stamp is at as the schemas store it: UTC, to the millisecond (the writer
// refuses a timestamp-millis more precise).
func stamp(at time.Time) time.Time { return at.UTC().Truncate(time.Millisecond) }

// maxOrderID is the longest id a stream id may have (CONTRACT.md §1).
const maxOrderID = 200

// checkOrderID checks that id can follow "Order-" in a stream id: 1 to 200
// characters of [A-Za-z0-9_.:@-].
func checkOrderID(id string) error {
	if id == "" {
		return reject(ErrInvalid, "the order id is empty")
	}
	if len(id) > maxOrderID {
		return reject(ErrInvalid, "the order id is longer than %d characters", maxOrderID)
	}
	for _, c := range id {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("_.:@-", c)
		if !ok {
			return reject(ErrInvalid, "the order id %q has %q: an order id has only letters, digits and _.:@-", id, c)
		}
	}
	return nil
}

// Bounds of OrderItemAdded's price: decimal(18, 2).
const (
	priceScale       = 2
	priceWholeDigits = 18 - priceScale
)

// parsePrice checks a unit price and returns it with exactly two decimal
// places: "15.9" is "15.90", "007" is "7.00".
func parsePrice(s string) (string, error) {
	digits := strings.TrimPrefix(s, "-")
	whole, frac, hasPoint := strings.Cut(digits, ".")
	if whole == "" || !allDigits(whole) || !allDigits(frac) || hasPoint && frac == "" {
		return "", fmt.Errorf("the price %q is not a decimal number such as 15.99", s)
	}
	if digits != s && strings.Trim(whole+frac, "0") != "" {
		return "", fmt.Errorf("the price %s is negative: a price is 0 or more", s)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > priceScale {
		return "", fmt.Errorf("the price %s has more than %d decimal places: prices are exact to the cent", s, priceScale)
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > priceWholeDigits {
		return "", fmt.Errorf("the price %s is too large: at most %d digits before the point", s, priceWholeDigits)
	}
	if whole == "" {
		whole = "0"
	}
	return whole + "." + frac + strings.Repeat("0", priceScale-len(frac)), nil
}

func allDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Load returns the order orderID as its stream in store has it: a zero
// Order with only ID set when the stream does not exist.
func Load(ctx context.Context, store aggregate.Store, orderID string) (Order, error) {
	o, _, err := aggregate.Load(ctx, store, StreamID(orderID), Order{ID: orderID}, Evolve)
	return o, err
}

// Create creates the order orderID for customerID in store (see
// Order.Create). A rejection is an *aggregate.RejectedError that matches
// one of the Err kinds above; a conflict with a concurrent command is
// retried (aggregate.Handle).
func Create(ctx context.Context, store aggregate.Store, orderID, customerID string) (aggregate.Result, error) {
	return handle(ctx, store, orderID, func(o Order, now time.Time) ([]client.Event, error) {
		return o.Create(customerID, now)
	})
}

// AddItem adds quantity units of itemID at unit price price to the order
// orderID in store (see Order.AddItem), as Create does.
func AddItem(ctx context.Context, store aggregate.Store, orderID, itemID string, quantity int, price string) (aggregate.Result, error) {
	return handle(ctx, store, orderID, func(o Order, now time.Time) ([]client.Event, error) {
		return o.AddItem(itemID, quantity, price, now)
	})
}

// Ship ships the order orderID in store to address (see Order.Ship), as
// Create does.
func Ship(ctx context.Context, store aggregate.Store, orderID, address string) (aggregate.Result, error) {
	return handle(ctx, store, orderID, func(o Order, now time.Time) ([]client.Event, error) {
		return o.Ship(address, now)
	})
}

// handle runs decide on the order orderID at the time of each attempt. An
// order id that cannot name a stream is rejected before any request.
func handle(ctx context.Context, store aggregate.Store, orderID string, decide func(Order, time.Time) ([]client.Event, error)) (aggregate.Result, error) {
	stream := StreamID(orderID)
	if err := checkOrderID(orderID); err != nil {
		return aggregate.Result{StreamID: stream}, &aggregate.RejectedError{StreamID: stream, Err: err}
	}
	return aggregate.Handle(ctx, store, stream, Order{ID: orderID}, Evolve,
		func(o Order) ([]client.Event, error) { return decide(o, time.Now()) }, aggregate.Options{})
}
