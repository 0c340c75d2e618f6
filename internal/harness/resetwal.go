package harness

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
)

// ResetNextXID stops the server cleanly, sets the transaction id it hands
// out next with pg_resetwal -x, and starts it again on the same port. A
// lower id than the server's makes it issue ids again, as a promoted
// asynchronous replica or a point-in-time restore does: tests use it to
// check that the store notices. Use a cluster of the test's own, never a
// shared one.
func (c *PostgresCluster) ResetNextXID(ctx context.Context, xid uint64) error {
	c.Shutdown()
	cmd := c.command(ctx, "pg_resetwal", "-x", strconv.FormatUint(xid, 10), "-D", filepath.Join(c.dir, "data"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_resetwal -x %d: %w\n%s", xid, err, out)
	}
	return c.Start(ctx)
}
