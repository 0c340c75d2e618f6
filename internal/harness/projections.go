package harness

import "fmt"

// FailingProjection is the file of a declarative projection of orders,
// called name, with the poison policy policy ("halt" or "park"). It
// writes each order's id to table {name}_orders, whose check constraint
// {name}_no_poison refuses the ids that start with "poison": such an
// order is a poison event until the constraint is dropped, the fix an
// operator makes before resuming the projection or retrying the event.
func FailingProjection(name, policy string) string {
	return fmt.Sprintf(`-- strata:categories Order
-- strata:on-poison %[2]s
-- strata:setup
CREATE TABLE IF NOT EXISTS %[1]s_orders (
    order_id text PRIMARY KEY CONSTRAINT %[1]s_no_poison CHECK (order_id NOT LIKE 'poison%%')
);

-- strata:on OrderCreated
INSERT INTO %[1]s_orders VALUES (:orderId) ON CONFLICT DO NOTHING;
`, name, policy)
}
