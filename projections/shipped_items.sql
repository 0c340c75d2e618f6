-- shipped_items: every item of every shipped order, searchable by item id
-- or by the words of the shipping address (GET /v1/shipped-items?q=).
--
-- A declarative projection: the directives below are SQL comments that
-- start with "strata:". Statements name event fields as :field, and the
-- event's envelope as :event.streamId, :event.version, ... (see README).

-- strata:projection shipped_items
-- strata:categories Order
-- strata:on-poison park

-- strata:setup
-- Items wait here until their order ships.
CREATE TABLE IF NOT EXISTS shipped_items_pending (
    order_id  text   NOT NULL,
    item_id   text   NOT NULL,
    quantity  bigint NOT NULL,
    PRIMARY KEY (order_id, item_id)
);
CREATE TABLE IF NOT EXISTS shipped_items (
    order_id         text        NOT NULL,
    item_id          text        NOT NULL,
    quantity         bigint      NOT NULL,
    shipping_address text        NOT NULL,
    shipped_at       timestamptz NOT NULL,
    search           tsvector GENERATED ALWAYS AS
                         (to_tsvector('simple', item_id || ' ' || shipping_address)) STORED,
    PRIMARY KEY (order_id, item_id)
);
CREATE INDEX IF NOT EXISTS shipped_items_search ON shipped_items USING gin (search);
CREATE INDEX IF NOT EXISTS shipped_items_item ON shipped_items (item_id);

-- strata:on OrderItemAdded
INSERT INTO shipped_items_pending (order_id, item_id, quantity)
VALUES (:orderId, :itemId, :quantity)
ON CONFLICT (order_id, item_id)
DO UPDATE SET quantity = shipped_items_pending.quantity + excluded.quantity;

-- strata:on OrderShipped
WITH shipped AS (
    DELETE FROM shipped_items_pending WHERE order_id = :orderId
    RETURNING order_id, item_id, quantity
)
INSERT INTO shipped_items (order_id, item_id, quantity, shipping_address, shipped_at)
SELECT order_id, item_id, quantity, :shippingAddress::text, :timestamp::timestamptz
FROM shipped
ON CONFLICT (order_id, item_id) DO NOTHING;

-- strata:on-stream-deleted
-- A deleted order leaves nothing behind, pending or shipped; written again
-- (after a soft deletion), it starts afresh. The order id is the stream id
-- after "Order-" (which the contract makes the events' orderId), taken
-- with strpos rather than split_part because an id may hold "-" itself.
WITH pending AS (
    DELETE FROM shipped_items_pending
    WHERE order_id = substr(:event.streamId, strpos(:event.streamId, '-') + 1)
)
DELETE FROM shipped_items
WHERE order_id = substr(:event.streamId, strpos(:event.streamId, '-') + 1);

-- strata:on-erased
-- The customer of the order is erased: its address reads as '[erased]' in
-- every event from now on, rebuilds included, so it is redacted here to the
-- same text. The event comes to each of the customer's orders.
UPDATE shipped_items SET shipping_address = '[erased]'
WHERE order_id = substr(:event.streamId, strpos(:event.streamId, '-') + 1);

-- strata:query search
-- Items whose id is q, or whose shipping address has q's words, the most
-- recently shipped first: GET /v1/projections/shipped_items/queries/search?q=
-- strata:param q text required max 200
-- strata:param limit int default 50 max 1000
SELECT order_id, item_id, quantity, shipping_address, shipped_at
FROM shipped_items
WHERE item_id = :q OR search @@ plainto_tsquery('simple', :q)
ORDER BY shipped_at DESC, order_id, item_id
LIMIT :limit
